"""scikit-learn and XGBoost fits that fail: a parameter value from the run config the estimator
refuses, features and labels of different lengths, NaNs in the features, an XGBoost objective it
does not know, class labels outside num_class (XGBoost's own C++ check), a model file not on disk."""

import argparse

import numpy as np

RUN_CONFIG = {"C": 1.0, "max_iter": 200, "objective": "multi:softprob", "num_class": 3}


def load_features(n: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, width)), rng.integers(0, 3, size=n)


def fit_logreg(x, y, cfg):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=cfg["C"], max_iter=cfg["max_iter"]).fit(x, y)


def fit_svm(x, y):
    from sklearn.svm import SVC
    return SVC(kernel="rbf").fit(x, y)


def fit_booster(x, y, cfg, rounds: int = 5):
    import xgboost as xgb
    params = {"objective": cfg["objective"], "num_class": cfg["num_class"], "max_depth": 3}
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=rounds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--width", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--objective", default="multi:softprob")
    ap.add_argument("--model", default="models/booster.json")
    args = ap.parse_args()
    x, y = load_features(args.n, args.width, args.seed)
    cfg = dict(RUN_CONFIG, C=args.C, objective=args.objective)
    print(f"{args.kind}: {x.shape[0]} rows x {x.shape[1]} features", flush=True)
    if args.kind == "param":
        fit_logreg(x, y, cfg)
    elif args.kind == "lengths":
        fit_logreg(x, y[: args.n - 7], cfg)
    elif args.kind == "nan_features":
        x[args.n // 3, 2] = np.nan
        fit_svm(x, y)
    elif args.kind == "objective":
        fit_booster(x, y, cfg)
    elif args.kind == "labels":
        fit_booster(x, y + 2, cfg)
    elif args.kind == "model_file":
        import xgboost as xgb
        booster = xgb.Booster()
        booster.load_model(args.model)
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
