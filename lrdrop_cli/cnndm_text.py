#!/usr/bin/env python
"""CNN/DailyMail text for BART fine-tuning: download, and GPT-2 BPE encoding.

python -m lrdrop_cli.cnndm_text fetch RAW_DIR
    Downloads CNN/DailyMail 3.0.0 (non-anonymised; the version BART and
    R-Drop use) from the Hugging Face hub (abisee/cnn_dailymail, parquet)
    and writes RAW_DIR/{train,val,test}.{source,target}: one article / one
    summary per line, the summary's highlight sentences joined by spaces as
    in fairseq's BART recipe. Needs pyarrow (pip install pyarrow).

python -m lrdrop_cli.cnndm_text update-freq --max-tokens 1024 [--gpus N] [--tokens-per-update 65536]
    The --update-freq that gives TOKENS_PER_UPDATE tokens per update (per copy) with
    --max-tokens on N GPUs (default: the visible ones): fairseq's BART recipe has
    8 GPUs x 2,048 x 4 and R-Drop's 4 x 1,024 x 16, both 65,536.

python -m lrdrop_cli.cnndm_text bpe ENCODER_JSON VOCAB_BPE IN OUT [--workers N]
    GPT-2 byte-level BPE (fairseq's gpt2_bpe_utils, the encoder BART was
    trained with) of each line of IN to token ids in OUT, in the same form as
    fairseq's examples/roberta/multiprocessing_bpe_encoder.py (not shipped in
    fairseq's pip package).
"""

import argparse
import multiprocessing
import os
import sys
import urllib.request

HUB = os.environ.get("CNNDM_URL", "https://huggingface.co/datasets/abisee/cnn_dailymail/resolve/main/3.0.0")
PARQUET = {
    "train": [f"train-0000{i}-of-00003.parquet" for i in range(3)],
    "val": ["validation-00000-of-00001.parquet"],
    "test": ["test-00000-of-00001.parquet"],
}


def one_line(text: str) -> str:
    return " ".join(text.split())


TOKENS_PER_UPDATE = 65536  # fairseq's BART recipe and R-Drop's alike


def update_freq(max_tokens: int, gpus: int, tokens_per_update: int = TOKENS_PER_UPDATE) -> int:
    """``tokens_per_update / (max_tokens x gpus)``; ValueError unless it divides exactly."""
    if max_tokens <= 0 or gpus <= 0:
        raise ValueError(f"MAX_TOKENS ({max_tokens}) and the GPU count ({gpus}) must be positive")
    freq, rest = divmod(tokens_per_update, max_tokens * gpus)
    if rest or freq == 0:
        raise ValueError(
            f"{tokens_per_update} tokens per update is not a whole multiple of MAX_TOKENS {max_tokens} x {gpus} "
            f"GPU(s); choose MAX_TOKENS so that it is (e.g. 1024 or 2048), or set UPDATE_FREQ yourself"
        )
    return freq


def visible_gpus() -> int:
    import torch

    return max(1, torch.cuda.device_count())


def fetch(raw_dir: str):
    if all(
        os.path.isfile(os.path.join(raw_dir, f"{split}.{side}")) for split in PARQUET for side in ("source", "target")
    ):
        print(f"[cnndm] {raw_dir} already has every split", flush=True)
        return
    try:
        import pyarrow.parquet as pq
    except ImportError:
        sys.exit("cnndm_text: fetching needs pyarrow: .venv/bin/pip install pyarrow")
    os.makedirs(raw_dir, exist_ok=True)
    for split, files in PARQUET.items():
        if os.path.isfile(os.path.join(raw_dir, f"{split}.target")):
            continue
        articles, summaries = [], []
        for name in files:
            local = os.path.join(raw_dir, "parquet", name)
            if not os.path.isfile(local):
                os.makedirs(os.path.dirname(local), exist_ok=True)
                url = f"{HUB}/{name}"
                print(f"[cnndm] downloading {url}", flush=True)
                try:
                    urllib.request.urlretrieve(url, local + ".part")
                except OSError as e:
                    sys.exit(
                        f"cnndm_text: could not download {url}: {e}\n"
                        "  No internet here? Put {train,val,test}.{source,target} made with "
                        "https://github.com/artmatsak/cnn-dailymail (fairseq's BART recipe) in "
                        f"{raw_dir} instead, or set CNNDM_URL to a mirror."
                    )
                os.replace(local + ".part", local)
            table = pq.read_table(local, columns=["article", "highlights"]).to_pydict()
            articles += table["article"]
            summaries += table["highlights"]
        for side, lines in (("source", articles), ("target", summaries)):
            with open(os.path.join(raw_dir, f"{split}.{side}"), "w", encoding="utf-8") as f:
                f.writelines(one_line(x) + "\n" for x in lines)
        print(f"[cnndm] {split}: {len(articles)} article/summary pairs", flush=True)


_encoder = None


def _init(encoder_json, vocab_bpe):
    global _encoder
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    _encoder = get_encoder(encoder_json, vocab_bpe)


def _encode(line: str) -> str:
    line = line.strip()
    return " ".join(map(str, _encoder.encode(line))) if line else ""  # empty lines kept, stay aligned


def bpe(encoder_json, vocab_bpe, inp, out, workers):
    with open(inp, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g, multiprocessing.Pool(
        workers, _init, (encoder_json, vocab_bpe)
    ) as pool:
        for ids in pool.imap(_encode, f, chunksize=256):
            g.write(ids + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch")
    f.add_argument("raw_dir")
    b = sub.add_parser("bpe")
    for name in ("encoder_json", "vocab_bpe", "inp", "out"):
        b.add_argument(name)
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    u = sub.add_parser("update-freq")
    u.add_argument("--max-tokens", type=int, required=True)
    u.add_argument("--gpus", type=int, help="default: the visible GPUs")
    u.add_argument("--tokens-per-update", type=int, default=TOKENS_PER_UPDATE)
    a = ap.parse_args(argv)
    if a.cmd == "fetch":
        fetch(a.raw_dir)
    elif a.cmd == "update-freq":
        try:
            print(update_freq(a.max_tokens, a.gpus or visible_gpus(), a.tokens_per_update))
        except ValueError as e:
            sys.exit(f"cnndm_text update-freq: {e}")
    else:
        bpe(a.encoder_json, a.vocab_bpe, a.inp, a.out, a.workers)


if __name__ == "__main__":
    main()
