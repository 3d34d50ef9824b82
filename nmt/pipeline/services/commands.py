"""``nmt server`` and ``nmt cluster``: thin shells over :mod:`.server` and :mod:`.cluster`."""

from __future__ import annotations


def cmd_server(action: str, overrides: list[str]) -> int:
    from nmt.pipeline.config import load_config
    from nmt.pipeline.services import server

    cfg = load_config(overrides).server
    if action == "up":
        st = server.up(cfg)
        print(f"MLflow server on {st.url} (pid {st.pid}, PostgreSQL {cfg.pg_host}:{cfg.pg_port}/{cfg.database}"
              f"{', basic auth' if cfg.auth else ''}); log: {st.log}\n"
              f"  export MLFLOW_TRACKING_URI={st.url}")
        return 0
    if action == "down":
        print("stopped" if server.down(cfg) else "no server was running")
        return 0
    st = server.status(cfg)
    print(f"{'up' if st.healthy else 'down'}: {st.url}" + (f" (pid {st.pid})" if st.pid else "") + f"; log: {st.log}")
    return 0 if st.healthy else 3


def cmd_cluster(action: str, overrides: list[str]) -> int:
    from nmt.pipeline.config import load_config
    from nmt.pipeline.services import cluster

    cfg = load_config(overrides).cluster
    if action == "up":
        nodes = cluster.up(cfg)
        print(f"Ray cluster at {cfg.address}: " + ", ".join(n.name for n in nodes)
              + f"\n  nmt sweep sweep.ray_address={cfg.address} sweep.storage_path=<a folder every node sees>")
        return 0
    if action == "down":
        n = cluster.down(cfg)
        print(f"stopped {n} processes" if n else "no cluster was running")
        return 0
    nodes = cluster.nodes(cfg)
    print(f"{len(nodes)} nodes at {cfg.address}" + "".join(f"\n  {n.name} (raylet pid {n.raylet_pid})" for n in nodes))
    return 0 if nodes else 3
