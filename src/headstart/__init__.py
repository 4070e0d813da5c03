"""headstart: transfer learning that proves it helped.

    import headstart
    run = headstart.fit("builtin:rotten-tomatoes", backbone="minilm-l6", strategy="lp-ft", train_size=2000)
    print(run.metrics["accuracy"])
"""

__version__ = "0.1.0"

import os as _os

# Offline-first: nothing is ever fetched from a model hub.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from .api import FitResult, Prediction, evaluate, fit, fit_spec, predict  # noqa: E402
from .compare import compare  # noqa: E402
from .config import RunSpec  # noqa: E402
from .errors import HeadstartError  # noqa: E402
from .export import export  # noqa: E402
from .pretrain import PretrainResult, pretrain  # noqa: E402
from .select import rank  # noqa: E402
from .select import Advice, advise  # noqa: E402
from .semi import SelfTrainResult, self_train, self_train_from_config  # noqa: E402
from .train.cache_store import cache_info, clear_cache  # noqa: E402

__all__ = ["fit", "fit_spec", "compare", "evaluate", "predict", "export", "FitResult", "Prediction", "RunSpec", "HeadstartError",
           "rank", "pretrain", "PretrainResult", "self_train", "self_train_from_config", "SelfTrainResult", "advise", "Advice", "cache_info", "clear_cache", "__version__"]
