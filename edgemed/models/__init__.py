"""Model specs → local Hugging Face folders (+ tokenizer), the embedded default included."""

from edgemed.models.resolve import (
    DEFAULT_SPEC,
    default_gguf_path,
    load_model,
    load_tokenizer,
    model_fingerprint,
    resolve_model,
)

__all__ = ["DEFAULT_SPEC", "default_gguf_path", "load_model", "load_tokenizer",
           "model_fingerprint", "resolve_model"]
