"""Adapter libraries from the command line: a directory of tuner files plus library.json (docs/adapters_library.md).

    python tools/adapters.py list DIR                                     # one row per adapter
    python tools/adapters.py add DIR FILE --name NAME [--task T] [--dataset D] [--metric top1=0.93 ...] [--overwrite]
    python tools/adapters.py show DIR NAME                                # every field of one entry, its full plan
    python tools/adapters.py remove DIR NAME                              # the entry and its file
    python tools/adapters.py verify DIR [NAME ...]                        # sha256 of each file; exit 1 if one changed

In Python: ``petl_vision.composition.library.AdapterLibrary(DIR)`` and ``load_library(model, DIR, names=None)``.
User errors exit with code 1 and one paragraph; --debug shows the traceback.
"""
import argparse
import json
import math

from petl_vision.composition.library import AdapterLibrary, LibraryEntry, LibraryError
from petl_vision.tuners import read_tuner_file

PLAN_WIDTH = 56  # list truncates the plan summary here; show prints it whole


def metric(text: str) -> tuple[str, float]:
    """``top1=0.931`` -> ``('top1', 0.931)``."""
    key, _, value = text.partition('=')
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not key or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f'{text!r} is not NAME=NUMBER (a finite number), e.g. --metric top1=0.931')
    return key, number


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, ['-' * w for w in widths], *rows]
    return '\n'.join('  '.join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def metrics_text(entry: LibraryEntry) -> str:
    return ' '.join(f'{k}={v:g}' for k, v in entry.metrics.items()) or '-'


def backbone_text(entry: LibraryEntry) -> str:
    b = entry.backbone
    return f'{b.get("class")} {b.get("num_params", 0):,} ({b.get("digest")})'


def embedding_text(entry: LibraryEntry) -> str:
    """The domain embedding in one line (its pool, size and image count), or '-' if none was stored."""
    e = entry.embedding
    if not e:
        return '-'
    images = f', {e["images"]:,} images' if e.get('images') else ''
    return f'{e["pool"]} feature, {len(e["vector"])} numbers{images}'


def short(text: str, width: int = PLAN_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 3] + '...'


def list_command(library: AdapterLibrary) -> None:
    entries = library.list()
    rows = [[e.name, e.task or '-', e.dataset or '-', short(e.plan), f'{e.trainable:,}', metrics_text(e),
             backbone_text(e), e.created] for e in entries]
    print(table(['name', 'task', 'dataset', 'plan', 'trainable', 'metrics', 'backbone', 'created'], rows))
    print(f'{len(entries)} adapter{"s" * (len(entries) != 1)} in {library.directory}')


def show_command(library: AdapterLibrary, name: str) -> None:
    entry = library.get(name)
    fields = [('name', entry.name), ('task', entry.task or '-'), ('dataset', entry.dataset or '-'),
              ('metrics', metrics_text(entry)), ('trainable', f'{entry.trainable:,}'), ('plan', entry.plan),
              ('backbone', backbone_text(entry)), ('family', str(entry.backbone.get('family'))),
              ('embedding', embedding_text(entry)),
              ('created', entry.created), ('sha256', entry.sha256), ('file', str(library.path_of(entry))),
              ('status', library.status(entry))]
    print(table(['field', 'value'], [[k, v] for k, v in fields]))
    if fields[-1][1] == 'ok':
        meta, _ = read_tuner_file(library.path_of(entry))
        print(f'full plan: {json.dumps(meta["plan"])}')


def verify_command(library: AdapterLibrary, names: list[str]) -> None:
    statuses = library.verify(names or None)
    print(table(['name', 'status', 'file'], [[n, s, str(library.path_of(n))] for n, s in statuses.items()]))
    bad = [f'{n} ({s})' for n, s in statuses.items() if s != 'ok']
    if bad:
        raise LibraryError(f'{len(bad)} of {len(statuses)} adapter files do not match library.json: {", ".join(bad)}; '
                           f'add them again (add --overwrite) or remove them')
    print(f'all {len(statuses)} files match their sha256')


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest='command', required=True)
    commands.add_parser('list', help='one row per adapter').add_argument('directory')
    add = commands.add_parser('add', help='copy a tuner file into the library')
    add.add_argument('directory')
    add.add_argument('file', help='a tuner file written by petl_vision.save_tuners (.safetensors)')
    add.add_argument('--name', required=True, help='adapter name (letters, digits, _ and -): its named adapter')
    add.add_argument('--task', help='what it was trained for, e.g. classification')
    add.add_argument('--dataset', help='what it was trained on, e.g. cifar100')
    add.add_argument('--metric', type=metric, action='append', default=[], help='NAME=NUMBER, repeatable')
    add.add_argument('--overwrite', action='store_true', help='replace an adapter of the same name')
    for command, text in (('show', 'every field of one adapter'), ('remove', 'take an adapter and its file out')):
        sub = commands.add_parser(command, help=text)
        sub.add_argument('directory')
        sub.add_argument('name')
    verify = commands.add_parser('verify', help="recompute each file's sha256 (exit 1 if one changed)")
    verify.add_argument('directory')
    verify.add_argument('names', nargs='*', help='adapters to check (default: all)')
    return p


def main() -> None:
    args = parser().parse_args()
    library = AdapterLibrary(args.directory)
    if args.command == 'list':
        list_command(library)
    elif args.command == 'add':
        entry = library.add(args.file, args.name, task=args.task, dataset=args.dataset, metrics=dict(args.metric),
                            overwrite=args.overwrite)
        print(f'added {entry.name}: {entry.plan}; {entry.trainable:,} trainable; sha256 {entry.sha256}')
    elif args.command == 'show':
        show_command(library, args.name)
    elif args.command == 'remove':
        entry = library.remove(args.name)
        print(f'removed {entry.name} ({entry.file})')
    else:
        verify_command(library, args.names)


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
