"""Publish a tuner-only checkpoint: ``python tools/publish.py SOURCE NAME [--out-dir DIR]``.

SOURCE is a work dir (its ``tuners_best.safetensors``, else ``tuners_latest.safetensors``, written by
TunerCheckpointHook), a Runner checkpoint (``iter_N.pth`` / ``epoch_N.pth``: the model is rebuilt from the config
stored in it, without downloading pretrained weights, and its trainable tensors are taken from the checkpoint) or
a tuner file (``.safetensors``). Writes ``<out-dir>/<NAME>-<first 8 hex of sha256>.safetensors`` (the file's own
digest, as in torch hub file names) and prints its sha256, ready for a zoo entry.
"""
import argparse
import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from mmengine.config import Config

from petl_vision import setup_env
from petl_vision.engine.safe_load import safe_torch_load
from petl_vision.registry import MODELS
from petl_vision.tuners import read_tuner_file, save_tuners, tuned_network

NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
WORK_DIR_FILES = ('tuners_best.safetensors', 'tuners_latest.safetensors')


def tuner_file_of_work_dir(work_dir: Path) -> Path:
    for name in WORK_DIR_FILES:
        if (work_dir / name).is_file():
            return work_dir / name
    raise FileNotFoundError(f'{work_dir} has no {" or ".join(WORK_DIR_FILES)}; train with '
                            "custom_hooks=[dict(type='TunerCheckpointHook', save_best=...)] or publish a Runner "
                            'checkpoint (.pth) of the work dir instead')


def write_from_runner_checkpoint(checkpoint: Path, out: Path) -> Path:
    """Rebuild the model of a Runner checkpoint (config from its ``meta``), load its weights, save its tuners."""
    if checkpoint.is_dir():
        raise ValueError(f'{checkpoint} is a sharded FSDP checkpoint (one file per rank); publish the '
                         'tuners_*.safetensors that TunerCheckpointHook wrote next to it')
    ckpt = safe_torch_load(checkpoint)
    cfg_text = ckpt.get('meta', {}).get('cfg') if isinstance(ckpt, dict) else None
    if not cfg_text or 'state_dict' not in ckpt:
        raise ValueError(f'{checkpoint} is not a Runner checkpoint (no meta.cfg and state_dict); give the work '
                         'dir, a Runner checkpoint (iter_N.pth / epoch_N.pth) or a tuner .safetensors file')
    cfg = Config.fromstring(cfg_text, file_format='.py')
    cfg.model.backbone.pretrained = None  # frozen weights come from the checkpoint; nothing to download
    setup_env.register_all_modules()
    model = MODELS.build(cfg.model)
    model.load_state_dict(ckpt['state_dict'])  # strict: a checkpoint of another model fails here
    return save_tuners(tuned_network(model), out, extra={'config': cfg_text, 'source': checkpoint.name}, owner=model)


def publish(source: str | Path, name: str, out_dir: str | Path = '.') -> tuple[Path, str]:
    """Write ``<out_dir>/<name>-<sha256[:8]>.safetensors`` from ``source``; returns (path, sha256)."""
    if not NAME.fullmatch(name):
        raise ValueError(f'name {name!r} must be letters, digits, ".", "_" or "-" (e.g. lora_vit_b16.cifar100)')
    source, out_dir = Path(source), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        staged = Path(tmp) / 'tuners.safetensors'
        if source.is_dir() and not (source / 'rank0.pth').exists():
            shutil.copyfile(tuner_file_of_work_dir(source), staged)
        elif source.suffix == '.safetensors':
            shutil.copyfile(source, staged)
        else:
            write_from_runner_checkpoint(source, staged)
        read_tuner_file(staged)  # refuses anything that is not a readable petl_vision tuner file
        with staged.open('rb') as f:
            digest = hashlib.file_digest(f, 'sha256').hexdigest()
        final = out_dir / f'{name}-{digest[:8]}.safetensors'
        staged.replace(final)  # same directory: never a half-written file under the final name
    return final, digest


def main() -> None:
    parser = argparse.ArgumentParser(description='Write a tuner-only checkpoint for release and print its sha256')
    parser.add_argument('source', help='work dir, Runner checkpoint (.pth) or tuner file (.safetensors)')
    parser.add_argument('name', help='release name; the file is <name>-<sha256[:8]>.safetensors')
    parser.add_argument('--out-dir', default='.', help='where to write the file (default: current directory)')
    args = parser.parse_args()
    path, digest = publish(args.source, args.name, args.out_dir)
    print(f'{path}\nsha256 {digest}')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
