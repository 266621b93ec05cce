"""Model zoo from the command line.

    python tools/zoo.py list                                   # names, sources, checksums, where each file is cached
    python tools/zoo.py download vit_base_patch16_224.in21k    # hub files: the Hugging Face cache; others: resumable
    python tools/zoo.py verify vit_base_patch16_224.in21k      # sha256 of the cached file against the table / hub
    python tools/zoo.py path vit_base_patch16_224.in21k        # where the file is (or will be) cached

Hub-hosted entries live in the Hugging Face cache timm uses (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE
apply); the others in $PETL_VISION_CACHE. Errors exit with code 1; --debug shows the traceback.
"""
import argparse

from petl_vision.zoo import ZOO, ZooEntry, cache_path, download, list_models, verify


def source_of(entry: ZooEntry) -> str:
    if entry.hub_repo is None:
        return 'url'
    return f'hf:{entry.hub_repo}@{entry.revision[:7] if entry.revision else "main"}'


def print_table() -> None:
    print(f'{"name":36s} {"kind":9s} {"licence":12s} {"sha256":8s} {"source":52s} cached at')
    for name in list_models():
        entry, path = ZOO[name], cache_path(name)
        where = path if path.is_file() else f'not downloaded ({path})'
        print(f'{name:36s} {entry.kind:9s} {entry.license:12s} {"pinned" if entry.sha256 else "unpinned":8s} '
              f'{source_of(entry):52s} {where}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=['list', 'download', 'verify', 'path'])
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
    else:
        path = cache_path(args.name)
        print(path if path.is_file() else f'{path} (not downloaded)')


if __name__ == '__main__':
    from petl_vision.cli import run_main  # user errors: one paragraph, exit 1; --debug: the traceback

    run_main(main)
