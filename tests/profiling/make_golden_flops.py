"""Write tests/profiling/golden_flops.json: PyTorch's FLOP counts of the three twin models.

Run (needs torch):  python tests/profiling/make_golden_flops.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import torch  # noqa: E402
from flop_models import torch_counts  # noqa: E402

counts = torch_counts()
counts["_source"] = f"torch {torch.__version__} torch.utils.flop_counter.FlopCounterMode, tests/profiling/flop_models.py"
path = Path(__file__).with_name("golden_flops.json")
path.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
print(f"wrote {path.name}: {counts}")
