"""The reference policy's code: seed 004's model, then temperature scaling.

``calibration_code()`` returns the Python the scripted agent sends to
``python_expression`` after ``load_dataset``: TF-IDF (1,500 features, 1-2
grams) -> a 2-layer MLP (64 hidden units, dropout 0.2; 96,389 parameters, as
in the seed) trained with the engine's trainer (AdamW, lr 1e-3, weight decay
1e-4, 6 epochs, per-epoch metrics streamed live), then one temperature fitted
on the validation logits (NLL), metrics printed before and after scaling, and
the calibrated test probabilities saved for ``submit_probabilities`` (and the
uncalibrated ones beside them, so the effect of scaling can be measured on
the test labels once they are revealed).
"""

from __future__ import annotations

from textwrap import dedent

PROBABILITIES_FILE = "probabilities.npy"
#: The same model's test probabilities before temperature scaling (not submitted).
UNCALIBRATED_FILE = "probabilities_uncalibrated.npy"


def calibration_code(
    *,
    seed: int = 0,
    epochs: int = 6,
    batch_size: int = 64,
    max_features: int = 1500,
    hidden: int = 64,
    out_file: str = PROBABILITIES_FILE,
    uncal_file: str = UNCALIBRATED_FILE,
) -> str:
    """Code for the sandbox; needs the variables ``load_dataset`` defines."""
    return dedent(f"""\
        import numpy as np
        import torch
        from torch import nn
        from sklearn.feature_extraction.text import TfidfVectorizer
        from agentdeck.engine.trainer import TrainConfig, fit, count_parameters
        from agentdeck.engine.metrics import (accuracy, macro_f1, expected_calibration_error, nll,
                                    brier_score, confusion_matrix, fit_temperature, softmax)

        # TF-IDF features (fit on train only)
        vec = TfidfVectorizer(max_features={max_features}, ngram_range=(1, 2))
        Xtr = vec.fit_transform(train_texts).toarray().astype(np.float32)
        Xva = vec.transform(val_texts).toarray().astype(np.float32)
        Xte = vec.transform(test_texts).toarray().astype(np.float32)
        k = len(class_names)

        def make_model():
            return nn.Sequential(nn.Linear(Xtr.shape[1], {hidden}), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear({hidden}, k))

        cfg = TrainConfig(epochs={epochs}, batch_size={batch_size}, lr=1e-3, weight_decay=1e-4,
                          optimizer="adamw", patience=None, restore_best=False, seed={seed})
        res = fit(make_model, Xtr, y_train, X_val=Xva, y_val=y_val, config=cfg)  # streams metrics
        model = res.model.eval()
        print(f"vocab {{len(vec.vocabulary_)}}, parameters {{count_parameters(model):,}}, "
              f"device {{res.device}}, {{res.seconds:.1f}} s")
        print("train loss by epoch:", [round(h["train_loss"], 4) for h in res.history])

        def logits_of(X):
            dev = next(model.parameters()).device
            with torch.no_grad():
                return model(torch.from_numpy(X).to(dev)).float().cpu().numpy().astype(np.float64)

        val_logits, test_logits = logits_of(Xva), logits_of(Xte)

        def report(tag, p, y):
            pred = p.argmax(1)
            m = {{"accuracy": accuracy(y, pred), "macro_f1": macro_f1(y, pred, k),
                  "ece": expected_calibration_error(p, y, 10), "nll": nll(p, y),
                  "brier": brier_score(p, y)}}
            print(f"{{tag:>22}}: " + ", ".join(f"{{n}} {{v:.4f}}" for n, v in m.items()))
            return m

        T = fit_temperature(val_logits, y_val)
        before = report("val, T=1", softmax(val_logits), y_val)
        after = report(f"val, T={{T:.3f}}", softmax(val_logits, T), y_val)
        log_metric("temperature", T)
        log_metric("val_ece_before_scaling", before["ece"])
        log_metric("val_ece_after_scaling", after["ece"])
        log_metric("val_nll_before_scaling", before["nll"])
        log_metric("val_nll_after_scaling", after["nll"])
        print("val confusion matrix (rows=true, cols=pred):")
        print(confusion_matrix(y_val, softmax(val_logits, T).argmax(1), k))

        test_probs = softmax(test_logits, T)
        np.save({out_file!r}, test_probs)
        np.save({uncal_file!r}, softmax(test_logits))  # T=1, to compare after grading
        print(f"saved {out_file} {{test_probs.shape}}; rows sum to 1: "
              f"{{bool(np.allclose(test_probs.sum(1), 1))}}")
        """)
