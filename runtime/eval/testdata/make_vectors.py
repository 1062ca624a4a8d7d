#!/usr/bin/env python3
"""Write sklearn_vectors.json: test vectors for runtime/eval's weighted F1 and FinLoRA scoring.

Run (scikit-learn 1.9.1 was used):  python3 make_vectors.py > sklearn_vectors.json

"f1" cases: sklearn.metrics.f1_score(y_true, y_pred, average="weighted") (zero_division default,
warnings silenced) and accuracy_score.
"finlora" cases: FinLoRA's scoring as described in ../shared/data/finlora/README.md (test_dataset.py
evaluate_accuracy): labels = distinct targets lower-cased; the prediction is the label whose first
occurrence in the lower-cased output is earliest (ties, which only happen when one label is a prefix
of another at the same position, go to the longest label, then the lexicographically smallest: FinLoRA
leaves ties to set-iteration order); correct if it equals the lower-cased target; response = target if
correct else the raw output; F1 = sklearn weighted F1 of (targets, responses).
"""
import json
import random
import warnings

from sklearn.metrics import accuracy_score, f1_score

warnings.filterwarnings("ignore")


def earliest(output, labels):
    low = output.lower()
    found = [(low.find(l), -len(l), l) for l in labels if low.find(l) != -1]
    if not found:
        return None
    return min(found)[2]


def finlora(targets, outputs):
    labels = sorted(set(t.lower() for t in targets))
    correct, response = 0, []
    for o, t in zip(outputs, targets):
        if earliest(o, labels) == t.lower():
            correct += 1
            response.append(t)
        else:
            response.append(o)
    return correct / len(outputs), f1_score(targets, response, average="weighted"), response


def main():
    rng = random.Random(20261127)
    f1_cases = [
        ("three-class", ["neutral", "positive", "negative", "neutral", "positive", "neutral"],
         ["neutral", "negative", "negative", "neutral", "positive", "positive"]),
        ("raw-outputs-as-labels", ["positive", "negative", "neutral", "neutral"],
         ["positive", "I think it is bad", "neutral", "n/a"]),
        ("pred-only-label", ["a", "a", "b"], ["a", "c", "c"]),
        ("all-wrong", ["a", "b", "c"], ["x", "y", "z"]),
        ("all-correct", ["a", "b", "b"], ["a", "b", "b"]),
        ("binary", ["yes", "no", "yes", "yes"], ["yes", "yes", "no", "yes"]),
        ("single-class", ["only", "only", "only"], ["only", "other", "only"]),
        ("case-differs", ["Positive", "negative"], ["positive", "negative"]),
        ("empty-prediction", ["a", "b", "a"], ["", "b", "a"]),
    ]
    labels7 = ["strong negative", "moderately negative", "mildly negative", "neutral",
               "mildly positive", "moderately positive", "strong positive"]
    yt = [rng.choice(labels7) for _ in range(300)]
    yp = [t if rng.random() < 0.45 else rng.choice(labels7 + ["junk %d" % rng.randrange(20)]) for t in yt]
    f1_cases.append(("random-nwgi-300", yt, yp))

    out = {"sklearn_version": __import__("sklearn").__version__, "f1": [], "finlora": []}
    for name, t, p in f1_cases:
        out["f1"].append({"name": name, "y_true": t, "y_pred": p,
                          "f1_weighted": f1_score(t, p, average="weighted"),
                          "accuracy": accuracy_score(t, p)})

    fin_cases = [
        ("earliest-label", ["positive", "neutral", "negative", "negative", "positive", "neutral"],
         ["positive, not negative", "neutral or negative", "Negative.", "positive then negative",
          "The sentiment is POSITIVE", "I cannot tell"]),
        ("nwgi-prefix-labels", ["mildly positive", "moderately negative", "strong positive", "neutral"],
         ["mildly positive", "moderately negative sentiment", "positive", "strong positive or neutral"]),
        ("ner", ["person", "organization", "location", "person"],
         ["organization", "organization", "location: person", "Person (a person)"]),
    ]
    words = ["negative", "neutral", "positive", "bad", "good", "unsure"]
    tt = [rng.choice(words[:3]) for _ in range(200)]
    oo = [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 4))) for _ in tt]
    fin_cases.append(("random-sentiment-200", tt, oo))
    for name, t, o in fin_cases:
        acc, f1, resp = finlora(t, o)
        out["finlora"].append({"name": name, "targets": t, "outputs": o, "accuracy": acc, "f1": f1,
                               "responses": resp})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
