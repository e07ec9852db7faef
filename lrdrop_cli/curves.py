"""Training curves of fairseq runs (``--log-format json`` logs): one panel per quantity
(train/valid loss and nll, the lr_drop consistency terms, valid BLEU when logged), one line
per run, over updates."""

from lrdrop_cli.fairseq_io import read_log

PANELS = [
    ("loss (bits/token)", [("train_inner", "loss", "train"), ("valid", "valid_loss", "valid")]),
    # with label smoothing the loss above flattens while perplexity still falls: the demo picks
    # checkpoint_best by this one
    ("nll_loss (bits/token)", [("train_inner", "nll_loss", "train"), ("valid", "valid_nll_loss", "valid")]),
    ("kl_loss", [("train_inner", "kl_loss", "")]),
    ("hidden_loss", [("train_inner", "hidden_loss", "")]),
    ("attn_loss", [("train_inner", "attn_loss", "")]),
    ("valid BLEU", [("valid", "valid_bleu", "")]),
]


def _update(rec):
    return float(rec.get("num_updates", rec.get("valid_num_updates", 0)))


def present_panels(logs):
    """The PANELS entries that at least one of ``logs`` (read_log results) has data for."""
    return [
        (title, series)
        for title, series in PANELS
        if any(key in rec for r in logs.values() for tag, key, _ in series for rec in r[tag])
    ]


PANEL_INCHES, HEIGHT_INCHES, DPI = 4.2, 3.4, 110


def figure(logs):
    """The matplotlib figure for ``logs`` ({run name: read_log result}): one panel per quantity
    present, one line per run and series, over updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(r["train_inner"] or r["valid"] for r in logs.values()):
        raise ValueError("no fairseq JSON log lines found; train with --log-format json")
    panels = present_panels(logs)
    fig, axes = plt.subplots(1, len(panels), figsize=(PANEL_INCHES * len(panels), HEIGHT_INCHES), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for name, r in logs.items():
            for tag, key, label in series:
                pts = [(_update(rec), float(rec[key])) for rec in r[tag] if key in rec]
                if pts:
                    xs, ys = zip(*pts)
                    style = "--" if tag == "valid" and label else "-"
                    ax.plot(
                        xs,
                        ys,
                        style,
                        marker="o" if tag == "valid" else None,
                        markersize=3,
                        label=f"{name} {label}".strip(),
                    )
        ax.set_title(title)
        ax.set_xlabel("updates")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot(runs, out):
    """``runs``: [(name, log path)]; writes the figure to ``out`` (PNG), returns ``out``."""
    import matplotlib.pyplot as plt

    fig = figure({name: read_log(path) for name, path in runs})
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
