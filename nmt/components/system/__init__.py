"""System: processes, locks, private files, paths, errors, typed configs, code versions and
remembered answers (JSON stamped with the files they came from)."""
