"""Model zoo from the command line.

    python tools/zoo.py list                                   # names, sources, what pins them, where they are cached
    python tools/zoo.py download vit_base_patch16_224.in21k    # hub files: the Hugging Face cache; others: resumable
    python tools/zoo.py verify vit_base_patch16_224.in21k      # sha256 of the cached file against the table / hub
    python tools/zoo.py path vit_base_patch16_224.in21k        # where the file is (or will be) cached
    python tools/zoo.py unlock vit_base_patch16_224.mae        # forget its locked commit and sha256

Hub-hosted entries live in the Hugging Face cache timm uses (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE
apply); the others in $PETL_VISION_CACHE. A hub entry the table does not pin to both a commit and a sha256 is
locked on its first download: $PETL_VISION_CACHE/zoo.lock.json records the commit and sha256 it got, and later
downloads and verify use them. The "pin" column of list: table (the table pins it), lock (the lock file does),
table+lock (the table's revision, the lock's sha256), partial (the table pins the revision only and nothing is
locked yet), none. Errors exit with code 1; --debug shows the traceback.
"""
import argparse

from petl_vision.zoo import (ZOO, ZooEntry, cache_path, download, list_models, lock_for, lock_path, pin_source,
                             remove_record, verify)


def source_of(entry: ZooEntry) -> str:
    """``url``, or ``hf:<repo>@<commit>`` with the table's commit, else the locked one, else ``main``."""
    if entry.hub_repo is None:
        return 'url'
    record = lock_for(entry)
    revision = entry.revision or (record.revision if record else None)
    return f'hf:{entry.hub_repo}@{revision[:7] if revision else "main"}'


def print_table() -> None:
    print(f'{"name":36s} {"kind":9s} {"licence":12s} {"pin":10s} {"source":52s} cached at')
    for name in list_models():
        entry, path = ZOO[name], cache_path(name)
        where = path if path.is_file() else f'not downloaded ({path})'
        print(f'{name:36s} {entry.kind:9s} {entry.license:12s} {pin_source(entry):10s} {source_of(entry):52s} {where}')
    print(f'lock file: {lock_path()}')


def unlock(name: str) -> None:
    record = remove_record(name.removeprefix('zoo://'))
    print(f'removed the lock of {name} (revision {record.revision}, sha256 {record.sha256}, locked '
          f'{record.locked_at}) from {lock_path()}; its next download locks it again')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=['list', 'download', 'verify', 'path', 'unlock'])
    parser.add_argument('name', nargs='?', help='zoo name (see list) or a URL')
    parser.add_argument('--sha256', help='expected checksum (any case), overriding the table; checked on cache hits')
    args = parser.parse_args()
    if args.command == 'list':
        print_table()
    elif args.name is None:
        parser.error(f'{args.command} needs a NAME; python tools/zoo.py list shows them')
    elif args.command == 'download':
        print(download(args.name, sha256=args.sha256))
    elif args.command == 'verify':
        print(f'{verify(args.name, sha256=args.sha256)}  {cache_path(args.name)}')
    elif args.command == 'unlock':
        unlock(args.name)
    else:
        path = cache_path(args.name)
        print(path if path.is_file() else f'{path} (not downloaded)')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
