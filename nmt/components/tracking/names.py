"""Every name the pipeline writes to MLflow or to disk and reads back: artifacts, tags,
registry aliases and metrics. Code uses these constants; a test greps the package for
quoted copies of them anywhere else."""

# ------------------------------------------------------------------ artifacts
# prepare
DATA_DIR = "data"                      # tokenized DatasetDict (Arrow), under the prepare run
TOKENIZER_DIR = "tokenizer"            # src.json / tgt.json (the same file twice when joint)
SRC_TOKENIZER = "src.json"
TGT_TOKENIZER = "tgt.json"
DATA_STATS = "data_stats.json"

# train
CHECKPOINT_DIR = "checkpoints"         # best.ckpt (the weights handed on), under the train run
BEST_CKPT = "best.ckpt"
LAST_CKPT = "last.ckpt"                # in .nmt/checkpoints/<reuse key>/: what an interrupted run resumes
CKPT_PENDING_ROWS = "nmt_pending_rows"  # checkpoint key: metric rows not yet in the store, with their run id
EPOCHS_DIR = "epochs"                  # beside last.ckpt: the k epoch checkpoints kept for averaging
AVERAGED_CKPT = "averaged.ckpt"
MODEL_CONFIG = "model_config.json"     # the ModelSpec: arch + fields + vocabulary, enough to rebuild

# evaluate
HYPOTHESES_DIR = "hypotheses"          # <split>.<search>.txt, detokenized, one per line
SAMPLES_TABLE = "samples.json"         # mlflow.log_table file
SCORES = "scores.json"
ATTENTION_DIR = "attention"            # sample<i>.png (+ _layers, _heads for the Transformer)
LENGTH_DIR = "length"                  # BLEU by source length
LENGTH_JSON = "bleu_by_length.json"
LENGTH_PNG = "bleu_by_length.png"
LENGTH_TABLE = "table.json"

# register
MODEL_NAME = "translator"              # name= of the logged pyfunc model
WEIGHTS = "weights.pt"                 # state_dict only, loaded with weights_only=True

# compare
REPORT_DIR = "report"
REPORT_MD, REPORT_HTML = "report.md", "report.html"

# journey (`nmt journey`: architectures or ablation rungs x seeds, under one parent run)
JOURNEY_DIR = "journey"                # under the journey parent run
JOURNEY_MD, JOURNEY_JSON = "journey.md", "journey.json"
CURVES_TOKENS = "curve_tokens.png"     # val BLEU against target tokens seen, seed bands
CURVES_TIME = "curve_time.png"         # ... against wall-clock minutes
CURVES_FLOPS = "curve_flops.png"       # ... against estimated training FLOPs (6 N D)

# sweep insight (under the sweep parent run)
INSIGHT_DIR = "insight"
IMPORTANCE_JSON = "importance.json"    # fANOVA importance per hyperparameter (optuna.importance)
IMPORTANCE_PNG = "importance.png"
PARALLEL_PNG = "parallel_coordinates.png"
IMPORTANCE_TABLE = "importance_table.json"  # the same numbers as an MLflow table

# the attention explorer: one offline HTML page (evaluate and compare)
EXPLORER_HTML = "explorer.html"
EXPLORER_JSON = "explorer.json"        # one model's explorer data, beside it (compare merges them)
EXPLORER_GOLD_HTML = "explorer_gold.html"  # evaluate.alignment_gold: the gold pairs, forced, gold links framed
EXPLORER_GOLD_JSON = "explorer_gold.json"

# `nmt align --gold` and evaluate.alignment_gold: the AER of every readout (alpha, each layer and head) against a gold set
ALIGNMENT_DIR = "alignment"
AER_TABLE = "aer.json"                 # mlflow.log_table file: readout, precision, recall, aer, links

# ------------------------------------------------------------------ run tags
TAG_STAGE = "nmt.stage"                # prepare | train | evaluate | register | trial | promotion | ...
TAG_CODE_VERSION = "nmt.code_version"
TAG_REUSE_KEY = "nmt.reuse_key"
TAG_PIPELINE = "nmt.pipeline"
TAG_DEVICE = "nmt.device"              # what a stage ran on: cpu, or cuda:0 (NVIDIA H200)
TAG_PRECISION = "nmt.precision"        # train: the precision trainer.precision resolved to (auto)
TAG_MAP = "analysis.map"               # evaluate: what attention/sample*.png show: attention | saliency
TAG_PRIMARY_SPLIT = "nmt.primary_split"  # prepare: the test split register, compare and the demo read
TAG_ANALYSIS_SPLIT = "analysis.split"  # evaluate: <split>/<search> the figures were drawn from
TAG_ALIGN_READOUT = "alignment.readout"  # evaluate with evaluate.alignment_gold: the readout its `nmt align` uses by default
TAG_ARCH = "arch"                      # evaluate, trials and versions: the model's label (seq2seq-gru)
TAG_RESOURCES = "nmt.resources"        # a sweep trial's Ray resources: CPU=1 GPU=0.5
TAG_OWNER = "nmt.owner"                # host:pid of the process writing the run (finds orphans)
TAG_RECOVERED = "nmt.recovered"        # why a RUNNING run was ended by a later command
TAG_NODE = "nmt.node"                  # the Ray node a trial ran on last (nmt_* resource name)
TAG_NODES = "nmt.nodes"                # every node it ran on, in order (retries move trials)
TAG_CHECKPOINT = "nmt.checkpoint"      # train: which weights best.ckpt holds (best epoch, or an average)
TAG_VAL_METRIC = "nmt.val_metric"      # train: what val/bleu holds, as its sacreBLEU signature (BLEU, or chrF)
TAG_RESUMED_FROM = "resumed_from"      # train: the last.ckpt an interrupted run went on from
TAG_SWEEP = "nmt.sweep"                # sweep parent: the sweep's name
TAG_SWEEP_DIR = "nmt.sweep_dir"        # sweep parent: Tune's experiment folder (resume)
TAG_BEST_TRIAL = "best_trial_run_id"   # sweep parent
TAG_TRIAL = "nmt.trial_id"
TAG_STOPPED = "nmt.stopped_by"         # asha: a trial the scheduler stopped early
TAG_CHAMPION = "champion"              # register run: "true" when it moved @champion
TAG_DECISION = "decision"              # promotion run: see nmt.pipeline.promotion.promote
TAG_JOURNEY = "nmt.journey"            # journey parent: the preset's name (journey, ablation)
TAG_ARM = "nmt.arm"                    # train and evaluate runs of a journey: the arm (architecture or rung)
TAG_SEED = "nmt.seed"                  # ... and the seed it trained with
TAG_ERROR = "nmt.error"                # a FAILED run: its one-line error
TAG_INSIGHT = "nmt.insight"            # sweep parent: why no importance was logged, when none was
TAG_PARENT = "mlflow.parentRunId"      # MLflow's own: nests a run under another
# experiment tag, MLflow's own: the UI's kind of the experiment (3.17: GenAI unless told)
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "Machine learning": runs, models, training charts

# model version tags
VTAG_TRAIN_RUN = "train_run_id"
VTAG_PREPARE_RUN = "prepare_run_id"
VTAG_VAL_BLEU = "val_bleu"
VTAG_PROMOTION = "promotion."          # prefix: decision, run_id, bleu_*, p_value of the last gate
VTAG_ROLLBACK_RUN = "rollback.run_id"

# params read back from runs
PARAM_PREPARE_RUN = "upstream.prepare_run_id"
PARAM_TRAIN_RUN = "upstream.train_run_id"
PARAM_SRC_LANG, PARAM_TGT_LANG = "data.src_lang", "data.tgt_lang"
PARAM_RECIPE = "recipe.name"              # train: the tuned recipe (conf/recipe/<name>.yaml) its values came from
PARAM_METRIC = "metric.signature"      # train, evaluate, promotion: the resolved BLEU signature (reuse key)

ENV_COMMAND = "NMT_COMMAND"            # the `nmt ...` command line being run (version descriptions name it)

# ------------------------------------------------------------------ registry aliases
CHAMPION = "champion"                  # what `models:/<name>@champion` serves
PREVIOUS = "previous"                  # the champion before the last promotion (rollback target)
CHALLENGER = "challenger"              # the last candidate the gate rejected

# ------------------------------------------------------------------ metrics
VAL_BLEU = "val/bleu"                  # greedy, sacreBLEU on a validation subset, each epoch
VAL_BLEU_BEST = "val/bleu_best"
VAL_BLEU_AVERAGED = "val/bleu_averaged"
VAL_LOSS = "val/loss"
TRAIN_LOSS = "train/loss"
TRAIN_LOSS_STEP = "train/loss_step"
TRAIN_LR = "train/lr"
TOKENS_PER_S = "train/tokens_per_s"
GPU_PEAK_MEM = "gpu/peak_mem_mb"
TO_FIRST_STEP = "time/to_first_step_s"        # from the process's start to the first training step
STAGE_TO_FIRST_STEP = "time/stage_to_first_step_s"  # from the train stage's (a trial's) start to it
STARTUP_PREFIX = "time/startup/"       # + phase + "_s": seconds of each start-up phase (nmt.components.training.startup)
BEST_VAL_BLEU = "best/val_bleu"        # train runs and trials: the val/bleu of the weights handed on
TOKENS_SEEN = "train/tokens_seen"      # target tokens trained on so far, beside each step (compute curves)
SYSTEM_PREFIX = "system/"              # MLflow's system metrics: + cpu_utilization_percentage, ...
JOURNEY_BLEU = "journey/bleu"          # journey parent: + "/<arm>", the pooled-seed test BLEU
TRAIN_TIME = "train_time_s"
DROPPED_POSITIONS = "train/dropped_positions"  # training pairs left out: longer than model.max_positions
NUM_PARAMS = "num_params"
AER_PREFIX = "aer/"                    # align and evaluate runs: + readout ("aer/penultimate", "aer/layer_2_head_1"), 0-100

ARTIFACTS = (DATA_DIR, TOKENIZER_DIR, SRC_TOKENIZER, TGT_TOKENIZER, DATA_STATS, CHECKPOINT_DIR, BEST_CKPT, LAST_CKPT,
             EPOCHS_DIR, AVERAGED_CKPT, MODEL_CONFIG, HYPOTHESES_DIR, SAMPLES_TABLE, SCORES, ATTENTION_DIR, LENGTH_DIR,
             LENGTH_JSON, LENGTH_PNG, LENGTH_TABLE, MODEL_NAME, WEIGHTS, REPORT_DIR, REPORT_MD, REPORT_HTML,
             JOURNEY_MD, JOURNEY_JSON, CURVES_TOKENS, CURVES_TIME, CURVES_FLOPS, IMPORTANCE_JSON, IMPORTANCE_PNG,
             PARALLEL_PNG, IMPORTANCE_TABLE, EXPLORER_HTML, EXPLORER_JSON, EXPLORER_GOLD_HTML, EXPLORER_GOLD_JSON,
             ALIGNMENT_DIR, AER_TABLE)
TAGS = tuple(v for k, v in dict(globals()).items() if k.startswith(("TAG_", "VTAG_")))
ALIASES = (CHAMPION, PREVIOUS, CHALLENGER)
METRICS = (VAL_BLEU, VAL_BLEU_BEST, VAL_BLEU_AVERAGED, VAL_LOSS, TRAIN_LOSS, TRAIN_LOSS_STEP, TRAIN_LR, TOKENS_PER_S,
           GPU_PEAK_MEM, TO_FIRST_STEP, STAGE_TO_FIRST_STEP, BEST_VAL_BLEU, TRAIN_TIME, NUM_PARAMS, TOKENS_SEEN,
           JOURNEY_BLEU, DROPPED_POSITIONS)


def startup_metric(phase: str) -> str:
    """``time/startup/fit_setup_s`` for the phase "fit setup"."""
    return f"{STARTUP_PREFIX}{phase.replace(' ', '_')}_s"
