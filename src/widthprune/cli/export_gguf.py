"""``widthprune export-gguf``: a checkpoint as a GGUF file for llama.cpp."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_export_gguf(sub) -> None:
    p = sub.add_parser(
        "export-gguf",
        help="write a (pruned) checkpoint as a GGUF file for llama.cpp",
        description="Convert a checkpoint with llama.cpp's converter (F16) and quantize it with "
        "llama.cpp's quantizer; report what each tensor type became, the file size and bits per "
        "weight. Needs `make deploy`.",
    )
    p.add_argument("model", help='a checkpoint folder or a packaged model name ("toy" too)')
    p.add_argument("--out", type=Path, required=True, help="the GGUF file to write")
    p.add_argument("--quant", default="Q4_K_M", help="F16, Q8_0, Q4_0, Q4_K_M, Q5_K_M or Q6_K")
    p.add_argument("--strict", action="store_true", help="refuse a width not fully quantized")
    p.add_argument("--check", action="store_true", help="compare llama.cpp (F16) with PyTorch")
    p.add_argument("--threads", type=int, default=0, help="quantizer threads (0: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(run_command=run_export_gguf)


def run_export_gguf(args) -> int:
    import tempfile
    import warnings

    import pandas as pd

    from ..deployment import export
    from ..deployment.tensors import WidthWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WidthWarning)  # others keep their filters
        check_dir = tempfile.TemporaryDirectory(prefix="gguf-check-") if args.check else None
        f16 = Path(check_dir.name, "check-f16.gguf") if check_dir else None
        try:
            result = export.export_gguf(
                args.model,
                args.out,
                quant=args.quant,
                strict=args.strict,
                keep_f16=f16,
                overwrite=args.overwrite,
                threads=args.threads,
            )
        except RuntimeError as err:  # llama.cpp's own failure, said in its words
            print(f"widthprune export-gguf: {err}", file=sys.stderr)
            return 1
        finally:
            for w in caught:  # the export's own advice, in its words; the rest as Python shows it
                if issubclass(w.category, WidthWarning):
                    print(f"widthprune export-gguf: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    print(pd.DataFrame(result.tensors).to_string(index=False))
    print(
        f"{result.path}: {result.quant}, width {result.width}, {result.mib:.1f} MiB, "
        f"{result.bits_per_weight:.2f} bits per weight, vocabulary {result.vocabulary!r}"
    )
    if check_dir is None:
        return 0
    from ..deployment.equivalence import check_gguf
    from ..models.loading import load

    model, tok = load(str(args.model))
    verdict = check_gguf(f16 if f16.exists() else result.path, model, tok)
    check_dir.cleanup()
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["passed"] else 1
