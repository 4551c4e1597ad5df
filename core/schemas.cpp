#include "core/schemas.h"

namespace mixnas::config {
namespace {

// Keys shared by every run: where it lands and how it is seeded.
void add_run_keys(Schema& s) {
  s.add("name", Type::kString, "exp",
        "Run name: results go to runs/<command>/<name> (exp, exp2, ...).")
      .add("exist_ok", Type::kBool, "false",
           "Reuse runs/<command>/<name> instead of numbering a new one.")
      .add("seed", Type::kInt, "0", "Random seed (data order, augmentation, initialisation).")
      .add("threads", Type::kInt, "0",
           "CPU threads: LibTorch training and validation use this many (0 = all cores); latency "
           "measurements of the runtime too unless cost.threads is set (0 = one thread).");
}

void add_model_data_keys(Schema& s) {
  s.add("model", Type::kString, "",
        "Model YAML (ultralytics format, e.g. configs/models/yolov8-pico.yaml) or arch.yaml.")
      .add("data", Type::kString, "", "Dataset YAML (ultralytics format: path, train, val, names).")
      .add("nc", Type::kInt, "0", "Number of classes; 0 = from the dataset YAML.")
      .add("imgsz", Type::kInt, "160",
           "Square input size in pixels (a multiple of the model's largest stride).")
      .add("cache", Type::kString, "ram",
           "Keep decoded images in RAM (up to 40% of the available memory) so every epoch after "
           "the first skips decoding; none = decode on every use.",
           {"ram", "none"});
}

void add_train_keys(Schema& s, const std::string& p) {
  s.add(p + ".epochs", Type::kInt, "30", "Training epochs.")
      .add(p + ".batch", Type::kInt, "16",
           "Images per batch (the global batch: shared by the processes of --nproc).")
      .add(p + ".micro_batch", Type::kInt, "0",
           "Images per micro-batch: BN statistics and the loss are computed per micro-batch, the "
           "gradients summed over the batch; set it to make results independent of the number of "
           "processes (0 = each process's whole share; docs/distributed.md).")
      .add(p + ".optimizer", Type::kString, "AdamW", "Optimizer.", {"SGD", "AdamW"})
      .add(p + ".lr0", Type::kFloat, "0.002", "Initial learning rate (after warm-up).")
      .add(p + ".lrf", Type::kFloat, "0.01", "Final learning rate as a fraction of lr0.")
      .add(p + ".schedule", Type::kString, "cosine", "Learning-rate schedule.",
           {"cosine", "linear"})
      .add(p + ".momentum", Type::kFloat, "0.937", "SGD momentum / Adam beta1.")
      .add(p + ".weight_decay", Type::kFloat, "0.0005",
           "Weight decay of conv weights (not of BN, biases or quantizer steps).")
      .add(p + ".warmup_epochs", Type::kFloat, "1.0", "Linear learning-rate warm-up, in epochs.")
      .add(p + ".ema", Type::kBool, "true",
           "Keep an exponential moving average of the weights for validation.")
      .add(p + ".workers", Type::kInt, "2", "Data-loader threads.")
      .add(p + ".val_every", Type::kInt, "1",
           "Validate every N epochs (and always after the last).")
      .add(p + ".distill", Type::kString, "\"\"",
           "Distillation: a trained model's weights file (its best.pt) whose head outputs the "
           "model learns beside the labels; in a search also the name of one of `baselines`, "
           "trained first and teaching the others and the found models (docs/training.md). "
           "Empty: none. YOLOv8-style heads.")
      .add(p + ".distill_gain", Type::kFloat, "1.0",
           "Gain of the distillation term (its class and box parts also by loss.cls and "
           "loss.dfl).");
}

void add_augment_keys(Schema& s) {
  s.add("augment.mosaic", Type::kFloat, "1.0", "Probability of a 4-image mosaic.")
      .add("augment.close_mosaic", Type::kInt, "5", "Switch mosaic off for the last N epochs.")
      .add("augment.fliplr", Type::kFloat, "0.5", "Probability of a horizontal flip.")
      .add("augment.scale", Type::kFloat, "0.5", "Random affine scale gain (+/-).")
      .add("augment.translate", Type::kFloat, "0.1",
           "Random affine translation (+/- fraction of size).")
      .add("augment.hsv_h", Type::kFloat, "0.015", "Hue jitter (fraction).")
      .add("augment.hsv_s", Type::kFloat, "0.7", "Saturation jitter (fraction).")
      .add("augment.hsv_v", Type::kFloat, "0.4", "Value jitter (fraction).");
}

void add_loss_keys(Schema& s) {
  s.add("loss.box", Type::kFloat, "7.5", "Box (CIoU) loss gain.")
      .add("loss.cls", Type::kFloat, "0.5", "Classification (BCE) loss gain.")
      .add("loss.dfl", Type::kFloat, "1.5", "Distribution focal loss gain.");
}

void add_val_keys(Schema& s) {
  s.add("val.conf", Type::kFloat, "0.001", "Score threshold for mAP evaluation.")
      .add("val.iou", Type::kFloat, "0.7", "NMS IoU threshold.")
      .add("val.max_det", Type::kInt, "300", "Detections kept per image after NMS.");
}

// The search space, the strategy and the rival strategies' settings; `mixnas study`'s.
void add_strategy_keys(Schema& s) {
  s.add("search_space", Type::kNode, "",
        "Candidates per site: activations, w_bits, a_bits, rules (docs/search_space.md).")
      .add("search.strategy", Type::kString, "dnas",
           "Search strategy (docs/search.md#strategies): dnas, greedy (ActNAS-style, NWOT), "
           "random, evolution (one supernet, several budgets) or uniform (baselines only).",
           {"dnas", "greedy", "random", "evolution", "uniform"})
      .add("search.budgets", Type::kFloatList, "[]",
           "evolution: further latency budgets, as fractions of the reference model's predicted "
           "latency; each budget's best is finetuned and measured (found/<name>/).")
      .add("search.budgets_ms", Type::kFloatList, "[]",
           "evolution: further latency budgets in ms (as search.budgets, absolute).")
      .add("search.front_points", Type::kInt, "0",
           "evolution: besides the budgets' winners, finetune and measure up to this many "
           "points of the proxy Pareto front under the config's budget, spread evenly in "
           "predicted latency (found/front_<ms>ms/).")
      .add("search.budget_fill", Type::kFloat, "0",
           "evolution: a budget's winner is the best score among architectures predicted at or "
           "above this fraction of the budget (the best under it when none is there); 0: the "
           "best under the budget.")
      .add("search.finetune_top", Type::kInt, "1",
           "evolution: finetune and measure this many candidates per budget, the best by proxy "
           "score within its band, and keep the one of best finetuned mAP50-95 (the others in "
           "found/<budget>-<rank>/).")
      .add("search.samples", Type::kInt, "16",
           "random: architectures drawn under the budget and evaluated with the supernet's "
           "weights.")
      .add("search.population", Type::kInt, "16", "evolution: architectures per generation.")
      .add("search.generations", Type::kInt, "6",
           "evolution: generations after the first population.")
      .add("search.mutation", Type::kFloat, "0.1",
           "evolution: probability that a child's site takes a random candidate.")
      .add("search.eval_images", Type::kInt, "128",
           "Held-out images on which greedy, random, evolution and the sensitivity analysis "
           "score a sub-architecture with the supernet's weights (BN recalibrated first).")
      .add("search.greedy_proxy", Type::kString, "nwot",
           "greedy: what scores a replacement: nwot (zero-cost, as ActNAS) or val (held-out "
           "mAP and loss with the supernet's weights).",
           {"nwot", "val"})
      .add("search.greedy_tolerance", Type::kFloat, "0.02",
           "greedy: a replacement is accepted when its score stays within this fraction of the "
           "start model's score (of its absolute value) and its predicted latency falls.")
      .add("search.sensitivity", Type::kBool, "false",
           "After the search, per site the held-out score change when that site alone takes "
           "each other candidate in the trained supernet (sensitivity.csv, report.html).")
      .add("study.strategies", Type::kStringList, "[dnas, greedy, random, evolution, uniform]",
           "mixnas study: the strategies run on the same data, seed, budget and epochs.")
      .add("study.uniform_sweep", Type::kBool, "true",
           "mixnas study: the uniform run trains every activation of the search space at int8 "
           "(the ActNAS uniform table) besides `baselines`; the other runs train no baselines.");
}

// The supernet phase: its data, epochs, optimizers, sampling and start.
void add_supernet_keys(Schema& s) {
  s.add("fraction", Type::kFloat, "1.0",
        "Fraction of the train split used (search, finetune and baselines), for quick runs.")
      .add("search.epochs", Type::kInt, "10", "Supernet epochs, warm-up included.")
      .add("search.batch", Type::kInt, "16",
           "Images per supernet batch (weight and architecture steps; the global batch, shared "
           "by the processes of --nproc).")
      .add("search.micro_batch", Type::kInt, "0",
           "Images per micro-batch of the supernet steps (as train.micro_batch; "
           "docs/distributed.md).")
      .add("search.lr0", Type::kFloat, "0.002",
           "AdamW learning rate of the supernet weights (cosine schedule to lr0 x finetune.lrf).")
      .add("search.finetune", Type::kBool, "true",
           "After the search: derive, finetune, export, measure, train the baselines and write "
           "the report.")
      .add("search.warmup_epochs", Type::kInt, "3", "Weight-only epochs before architecture steps.")
      .add("search.arch_split", Type::kFloat, "0.2",
           "Fraction of the train split held out for architecture steps.")
      .add("search.arch_lr", Type::kFloat, "0.01", "Adam learning rate of the architecture logits.")
      .add("search.sampling", Type::kString, "gumbel", "How candidates are mixed.",
           {"softmax", "gumbel", "hard_gumbel"})
      .add("search.tau_start", Type::kFloat, "5.0",
           "Gumbel-softmax temperature at the first architecture epoch.")
      .add("search.tau_end", Type::kFloat, "0.5",
           "Temperature at the last epoch (exponential schedule).")
      .add("search.recompute", Type::kBool, "false",
           "Recompute candidate branches in backward to save memory.")
      .add("search.start_act", Type::kString, "\"\"",
           "Activation the architecture epochs start from: when the warm-up ends its logit is "
           "raised by search.start_logit at every site (e.g. the accurate reference, silu); "
           "empty: all candidates start equal.")
      .add("search.start_bits", Type::kInt, "0",
           "Bit-width the architecture epochs start from: when the warm-up ends the logits of "
           "w_bits and a_bits equal to it are raised by search.start_logit wherever they are "
           "candidates (e.g. 8, so that the cost terms lower bits only where they must); 0: "
           "every bit-width starts equal.")
      .add("search.start_logit", Type::kFloat, "1.0",
           "Head start of search.start_act's and search.start_bits' logits (1.0 with 5 "
           "candidates: probability 0.40).");
}

// The cost terms, their budgets and the latency table; where latency comes from.
void add_cost_keys(Schema& s) {
  s.add("cost.lambda_latency", Type::kFloat, "0.1",
        "Weight of the latency term, against the detection loss per image.")
      .add("cost.lambda_memory", Type::kFloat, "0.05",
           "Weight of the memory term, against the detection loss per image.")
      .add("cost.target_latency_ms", Type::kFloat, "0",
           "Latency budget; 0 = cost.target_latency_ratio x the all-8-bit model's.")
      .add("cost.target_latency_ratio", Type::kFloat, "0.7",
           "Latency budget as a fraction of the all-8-bit model's (its slowest activations), "
           "used when cost.target_latency_ms is 0.")
      .add("cost.target_memory_bytes", Type::kFloat, "0",
           "Peak-memory budget; 0 = cost.target_memory_ratio x the all-8-bit model's.")
      .add("cost.target_memory_ratio", Type::kFloat, "0.4",
           "Peak-memory budget as a fraction of the all-8-bit model's, used when "
           "cost.target_memory_bytes is 0.")
      .add("cost.shape", Type::kString, "relu", "g(x) applied to cost/target.",
           {"linear", "relu", "log"})
      .add("cost.runs", Type::kInt, "20",
           "Measured runs per latency-table entry and per whole model (median after warm-up).")
      .add("cost.warmup", Type::kInt, "5", "Unmeasured runs before each measurement.")
      .add("cost.threads", Type::kInt, "0",
           "Threads the runtime uses when measuring: as the model will run on the device "
           "(0 = the value of 'threads', 1 when that is 0).")
      .add("cost.calibrate_n", Type::kInt, "6",
           "Random whole architectures measured to calibrate the table for a model.")
      .add("cost.validate_n", Type::kInt, "6",
           "Random whole architectures measured after the search to report the table's error.")
      .add("cost.prune_margin", Type::kFloat, "0.05",
           "Drop a bit-width candidate at a site when a wider one is no more than this "
           "fraction slower (or runs the same kernel) and holds no more memory there on the "
           "measured device; negative = keep every candidate.")
      .add("cost.lut_cache", Type::kString, ".cache/mixnas/lut",
           "Folder of cached latency tables (one per device id); empty = no cache.")
      .add("device", Type::kString, "local",
           "Where latency comes from: 'local' (measured by the in-process runtime), "
           "configs/devices/X.yaml (measured by its agents) or a device model with `kind: "
           "model` (predicted, not measured; docs/device_models.md).");
}

// The uniform baselines the searched model is compared with.
void add_baseline_keys(Schema& s) {
  s.add("baselines", Type::kStringList, "[silu, relu, hardswish]",
        "Uniform-activation baselines trained with the same budget, each `act` (at "
        "baseline_bits) or `act:bits` (bits fp32, int8 or searched; named act_bits); "
        "summary.json compares the searched model with each (vs_<name>), the first is the "
        "headline.")
      .add("baseline_bits", Type::kString, "fp32",
           "Bits of the baselines: fp32, int8, or the searched model's bits per site.",
           {"fp32", "int8", "searched"});
}

}  // namespace

const Schema& train_schema() {
  static const Schema schema = [] {
    Schema s("train", "Trains a fixed model: mixnas train CONFIG [key=value ...].");
    add_run_keys(s);
    add_model_data_keys(s);
    add_train_keys(s, "train");
    s.add("quant.enabled", Type::kBool, "true",
          "Quantization-aware training when the architecture has bits below 32.")
        .add("quant.start_epoch", Type::kInt, "0",
             "Epoch (from 0) from which quantization-aware training quantizes; the epochs before "
             "it train the float model, and at the switch activation ranges are calibrated on 512 "
             "train images and weight steps fitted. No later than the last epoch.")
        .add("quant.freeze_bn_epoch", Type::kInt, "2",
             "Epoch (from 0) from which quantization-aware training folds BN, statistics frozen, "
             "and fits the weight steps to the folded weights; no later than the last epoch, no "
             "earlier than quant.start_epoch.");
    add_augment_keys(s);
    add_loss_keys(s);
    add_val_keys(s);
    return s;
  }();
  return schema;
}

const Schema& search_schema() {
  static const Schema schema = [] {
    Schema s("search",
             "Searches activations and bit-widths: mixnas search CONFIG [key=value ...].");
    add_run_keys(s);
    add_model_data_keys(s);
    add_strategy_keys(s);
    add_supernet_keys(s);
    add_cost_keys(s);
    add_baseline_keys(s);
    add_train_keys(s, "finetune");
    s.add("quant.start_epoch", Type::kInt, "0",
          "Finetune epoch (from 0) from which the searched model is quantized; the epochs before "
          "it train the float model, and at the switch activation ranges are calibrated on 512 "
          "train images and weight steps fitted. No later than the last epoch.")
        .add("quant.freeze_bn_epoch", Type::kInt, "2",
             "Finetune epoch (from 0) from which BN is folded, statistics frozen, and the weight "
             "steps fitted to the folded weights; no later than the last epoch, no earlier than "
             "quant.start_epoch.");
    add_augment_keys(s);
    add_loss_keys(s);
    add_val_keys(s);
    return s;
  }();
  return schema;
}

const Schema& device_schema() {
  static const Schema schema = [] {
    Schema s("device",
             "A class of devices measured through mixnas-agent (configs/devices/*.yaml).");
    s.add("name", Type::kString, "", "Device class name, e.g. rpi4.")
        .add("evaluator", Type::kString, "agent",
             "How the class is evaluated: agent = measured by its mixnas-agent servers.")
        .add("agents", Type::kStringList, "", "host:port of each agent of this class.")
        .add("token_file", Type::kString, "", "File holding the bearer token the agents expect.")
        .add("timeout_s", Type::kFloat, "120", "Per-request timeout.")
        .add("retries", Type::kInt, "3", "Retries per request, with exponential backoff.")
        .add("tls_ca_file", Type::kString, "\"\"",
             "HTTPS: verify the agents' certificates and host names against this CA file (PEM); "
             "empty: no CA check.")
        .add("tls_fingerprint_sha256", Type::kString, "\"\"",
             "HTTPS: accept exactly the agent certificate with this SHA-256 fingerprint (pinned, "
             "e.g. self-signed; as `openssl x509 -noout -fingerprint -sha256` prints it). Give "
             "this or tls_ca_file; neither: plain HTTP.");
    return s;
  }();
  return schema;
}

std::vector<const Schema*> all_schemas() {
  return {&train_schema(), &search_schema(), &device_schema()};
}

}  // namespace mixnas::config
