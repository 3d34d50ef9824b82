"""Artifact names, in one place: every stage writes and reads them through these constants."""

# prepare
DATA_DIR = "data"                      # tokenized DatasetDict (Arrow), under the prepare run
TOKENIZER_DIR = "tokenizer"            # src.json / tgt.json (the same file twice when joint)
SRC_TOKENIZER = "src.json"
TGT_TOKENIZER = "tgt.json"
DATA_STATS = "data_stats.json"

# train
CHECKPOINT_DIR = "checkpoints"         # best.ckpt and last.ckpt
BEST_CKPT = "best.ckpt"
LAST_CKPT = "last.ckpt"
MODEL_CONFIG = "model_config.json"     # arch + fields + vocab/special ids: enough to rebuild

# evaluate
HYPOTHESES_DIR = "hypotheses"          # <split>.<search>.txt, detokenized, one per line
SAMPLES_TABLE = "samples.json"         # mlflow.log_table file
SCORES = "scores.json"

# register
MODEL_NAME = "translator"              # name= of the logged pyfunc model
WEIGHTS = "weights.pt"                 # state_dict only, loaded with weights_only=True

# tags
TAG_STAGE = "nmt.stage"
TAG_CODE_VERSION = "nmt.code_version"
TAG_REUSE_KEY = "nmt.reuse_key"
TAG_PIPELINE = "nmt.pipeline"
TAG_DEVICE = "nmt.device"          # what a stage ran on: cpu, or cuda:0 (NVIDIA H200)
TAG_PRECISION = "nmt.precision"    # train: the precision trainer.precision resolved to (auto)
TAG_MAP = "analysis.map"           # evaluate: what attention/sample*.png show: attention | saliency
TAG_RESOURCES = "nmt.resources"    # a sweep trial's Ray resources: CPU=1 GPU=0.5
TAG_OWNER = "nmt.owner"            # host:pid of the process writing the run (finds orphans)
TAG_RECOVERED = "nmt.recovered"    # why a RUNNING run was ended by a later command
TAG_NODE = "nmt.node"              # the Ray node a trial ran on last (nmt_* resource name)
TAG_CHECKPOINT = "nmt.checkpoint"  # train: which weights best.ckpt holds (best epoch, or an average)
TAG_NODES = "nmt.nodes"            # every node it ran on, in order (retries move trials)
