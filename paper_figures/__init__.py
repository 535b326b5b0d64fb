"""Figures drawn from the saved results of the experiments (PNG for reading, PDF for papers)."""
from __future__ import annotations

from pathlib import Path


def save_figure(fig, out: Path, name: str, dpi: int = 200) -> None:
    """``out/name.png`` (``dpi``, 200 unless the caller chooses) and ``out/name.pdf``, each written atomically;
    the PDF carries no time stamp, so a rerun writes the same bytes. Closes the figure."""
    import matplotlib.pyplot as plt

    from jscgc.io import atomic_save

    for ext in ("png", "pdf"):
        meta = {"CreationDate": None} if ext == "pdf" else {}
        atomic_save(Path(out) / f"{name}.{ext}",
                    lambda f: fig.savefig(f, dpi=dpi, bbox_inches="tight", metadata=meta))
    plt.close(fig)
