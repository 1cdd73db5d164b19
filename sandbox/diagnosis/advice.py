"""What each symptom means: a title, the likely causes and the fixes to try, in the order
worth trying them. Drawn from the shared bug list (TRAINING-BUGS.md) and its sources:
AUTOTRAINER's repair order, DeepDiagnosis' messages, the Deep Learning Tuning Playbook.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    title: str
    causes: tuple[str, ...]
    fixes: tuple[str, ...]


SYMPTOMS: dict[str, Advice] = {
    "diverging": Advice(
        "The loss diverges",
        ("learning rate too high for this optimizer and batch size (momentum multiplies it)",
         "loss summed instead of averaged, or gradient accumulation without dividing",
         "a numerically unstable hand-written loss (log of softmax, log(p) without eps)"),
        ("lower the learning rate about 10x (warmup helps a sound peak rate, not a bad one)",
         "clip the gradient norm around the 90th percentile of healthy norms, as a safety "
         "net: a clip that acts on most steps is a lower learning rate in disguise",
         "use F.cross_entropy / log_softmax instead of log(softmax)")),
    "not-learning": Advice(
        "The loss does not move from where it started",
        ("gradients vanish before they reach the early layers (deep sigmoid/tanh, tiny init)",
         "learning rate far too low, or parameters frozen / missing from the optimizer",
         "weight decay so strong it pulls the weights to zero as fast as the gradient "
         "moves them (an AdamW-sized decay, 0.01-0.1, given to SGD or Adam)",
         "the optimizer holds parameters of a model object that is no longer trained",
         "labels misaligned with inputs, so there is nothing to learn"),
        ("look at grad_norm/* per layer: which layers get a gradient at all?",
         "ReLU with Kaiming init, normalisation layers, residual connections",
         "raise the learning rate (an LR range test finds the scale)",
         "weight decay in the usual range for the optimizer: SGD and Adam add it to the "
         "gradient, so they take far less than AdamW's decoupled decay",
         "build the optimizer from the final model's parameters; check requires_grad")),
    "collapsed": Advice(
        "The run learned, then lost it",
        ("a learning rate that became too high mid-run: a schedule restart, a warmup to too "
         "high a peak, a rate changed by hand or on resume",
         "one exploding step with no gradient clipping (a bad batch, a cliff in the loss)",
         "that step killed the ReLUs or saturated the output layer, so the model cannot "
         "climb back"),
        ("look at the learning rate and the gradient norm at the step where it happened",
         "lower the peak learning rate, or warm restarts up again",
         "clip the gradient norm; keep the last good checkpoint and resume from it")),
    "oscillating": Advice(
        "The loss swings up and down instead of settling",
        ("data not shuffled: batches come in blocks (sorted by class or by source)",
         "learning rate at the edge of stability: steps overshoot and come back",
         "a learning-rate schedule that restarts or cycles"),
        ("shuffle every epoch (DataLoader(shuffle=True) or a fresh randperm)",
         "lower the learning rate 2-3x, or decay it",
         "a larger batch, or gradient clipping")),
    "overfitting": Advice(
        "Validation loss turns up while training loss keeps falling",
        ("the model memorises the training set: too large, too many epochs",
         "no regularisation, or too little data for the model"),
        ("early stopping at the validation minimum",
         "weight decay, dropout, data augmentation",
         "a smaller model or more data")),
    "vanishing-gradients": Advice(
        "Gradients vanish on the way back to the first layers",
        ("saturating activations (sigmoid, tanh) stacked deep",
         "initial weights too small for the depth"),
        ("ReLU-family activations with Kaiming (He) initialisation",
         "BatchNorm or LayerNorm between layers; residual connections")),
    "exploding-gradients": Advice(
        "Gradients explode",
        ("learning rate too high, so the weights and with them the gradients grow",
         "initial weights too large for the depth (N(0, 1) in a deep net)",
         "a recurrent net without clipping"),
        ("clip the gradient norm", "lower the learning rate",
         "default (Kaiming/Xavier) initialisation; normalisation layers")),
    "large-updates": Advice(
        "Each step rewrites the weights instead of nudging them",
        ("learning rate (times momentum's 1/(1 - beta)) far too high for the weight scale",),
        ("lower the learning rate until update/weight ratios sit near 1e-3",
         "warmup, or an adaptive optimizer with a modest learning rate")),
    "large-early-updates": Advice(
        "The first steps rewrite the weights",
        ("no learning-rate warmup: Adam's first updates are about lr for every weight, "
         "whatever the gradient, so the peak rate hits a freshly initialised model",
         "a peak learning rate too high for the model's first steps"),
        ("warm the learning rate up linearly over the first hundred or so steps",
         "a lower peak learning rate; pre-norm (norm_first) transformer blocks")),
    "dead-units": Advice(
        "Many ReLU units never activate",
        ("a learning-rate spike pushed pre-activations negative for every input",
         "a large negative bias initialisation, or unnormalised inputs"),
        ("LeakyReLU, ELU or GELU instead of ReLU", "Kaiming initialisation, zero biases",
         "lower the learning rate; BatchNorm before the activation")),
    "eval-batch-dependence": Advice(
        "Predictions depend on the rest of the batch",
        ("the model is still in training mode when it predicts: BatchNorm uses the batch's "
         "statistics and dropout stays on",),
        ("call model.eval() before evaluating or serving, model.train() before training",
         "evaluate under torch.no_grad() / inference_mode() as well; it is not a mode")),
    "nondeterministic-eval": Advice(
        "The same input gets a different answer each time it is served",
        ("dropout still active at inference: the model left in training mode, or "
         "F.dropout called without training=self.training",
         "random augmentation (crops, noise, flips) in the evaluation or serving transform",
         "sampling at inference where the argmax or the mean was meant"),
        ("call model.eval() before evaluating and serving; pass training=self.training to "
         "functional dropout",
         "give evaluation and serving a deterministic transform of their own",
         "serve the same batch twice: the answers must be identical")),
    "validation-above-training": Advice(
        "Validation is far better than training can explain",
        ("the validation rows are rows, or near-copies of rows, the model trains on",
         "a feature that carries the label (recorded after the outcome, or derived from "
         "the target) on the validation side",
         "the loss computed differently for validation (another reduction, other weights, "
         "cleaned labels)"),
        ("check what the validation rows share with the training rows: ids, hashes, "
         "near-duplicates",
         "compute the training loss again with the model in eval mode, on the training "
         "rows, the way validation is computed",
         "split by group or time before any preprocessing")),
    "flat-validation-metric": Advice(
        "The validation metric never moves while the training loss falls",
        ("the model gives every input the majority class: imbalanced classes under a plain "
         "loss, or class weights the wrong way round",
         "the metric is computed from a stale copy of the model, or logged from a variable "
         "that is never updated"),
        ("look at the confusion matrix or the per-class recall on validation",
         "inverse-frequency class weights or a balanced sampler; score what the task needs "
         "(balanced accuracy, macro-F1)",
         "evaluate the model object that is being trained, and log what evaluate returns")),
    "optimistic-validation": Advice(
        "Validation is far better than the hidden test",
        ("leakage: the same subjects, duplicates or near-duplicates on both sides of the "
         "split", "a feature that production does not have yet (recorded after the outcome, "
         "or computed with future values)",
         "validation scored differently from how the model is served (batching, train "
         "mode), or on another metric (plain accuracy on imbalanced classes)",
         "the checkpoint or hyper-parameters were picked on the test set"),
        ("split by group (patient, user, source) before any preprocessing",
         "deduplicate before splitting",
         "score validation exactly the way the model will be served")),
    "rising-loss": Advice(
        "The training loss goes up",
        ("a sign error: the loss (or the update) climbs the objective instead of descending it",
         "an objective meant to be maximised (a likelihood, a score) handed to a minimiser, "
         "or the reverse",
         "a learning rate so high that every step overshoots"),
        ("check the sign of every term of the loss and of any hand-written update",
         "overfit one batch: a sound loss and update drive it to about zero",
         "then look at the learning rate")),
    "sudden-nan": Advice(
        "The loss turns NaN in the middle of healthy training",
        ("a numerically unstable loss: log(softmax(x)), log(sigmoid(x)) or log(p) without "
         "eps gives log(0) = -inf once the model is confident",
         "a division by a quantity that reaches zero, or exp() of a growing logit",
         "a single exploding gradient step (look at the gradient norm just before)"),
        ("use the fused, stable forms: F.log_softmax, F.cross_entropy, "
         "F.binary_cross_entropy_with_logits, torch.logsumexp",
         "torch.autograd.set_detect_anomaly(True) on a short rerun names the operation",
         "clamp or add eps where a log or division is unavoidable")),
    "small-updates": Advice(
        "Each step barely moves the weights",
        ("learning rate far too low for this optimizer (SGD kept an Adam learning rate, or "
         "a decimal slipped)",
         "a schedule that decayed the learning rate to almost nothing",
         "loss scaled down (divided by a large constant or a huge accumulation factor)"),
        ("raise the learning rate until update/weight ratios sit near 1e-3 (an LR range "
         "test finds the scale)",
         "an adaptive optimizer (Adam) at its usual 1e-3")),
    "frozen-weights": Advice(
        "The weights never change",
        ("the optimizer holds the parameters of another model object (re-created, copied "
         "or loaded after the optimizer was built)",
         "requires_grad=False left on, or the layers missing from the optimizer's "
         "parameter groups",
         "the graph is cut (.detach(), torch.no_grad(), .data) before these layers"),
        ("build the optimizer from the final model's parameters, after any re-creation or "
         "wrapping",
         "check {id(p) for p in model.parameters()} against the optimizer's param_groups",
         "unfreeze what should train: requires_grad_(True)")),
    "lr-collapse": Advice(
        "The learning rate collapses early",
        ("a scheduler stepped every batch whose milestones or step size are counted in "
         "epochs",
         "a decay factor (gamma) far too small, or a schedule sized for a longer run"),
        ("step epoch-based schedulers once per epoch, or give them milestones in steps",
         "size the schedule to the run's real number of steps; a constant LR is a sound "
         "baseline")),
}
