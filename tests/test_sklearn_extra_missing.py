"""Without scikit-learn, importing rnnkit.wrappers fails with an ImportError naming the extra
(and ``import rnnkit`` itself does not need it)."""
from __future__ import annotations

import subprocess
import sys


def test_import_error_names_the_extra():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import rnnkit\n"
            "try:\n    import rnnkit.wrappers\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "rnnkit[sklearn]" in out.stdout
