"""tests/levels: the folder on the path (--import-mode=importlib), so the verl export tests reuse the
published-table fixtures of test_published.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
