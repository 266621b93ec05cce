"""Model zoo from the command line.

    python tools/zoo.py list                                   # names, kinds, licences, pinned checksums
    python tools/zoo.py download vit_base_patch16_224.in21k    # into $PETL_VISION_CACHE (resumes a partial file)
    python tools/zoo.py verify vit_base_patch16_224.in21k      # sha256 of the cached file against the table
    python tools/zoo.py path vit_base_patch16_224.in21k        # where the file is (or will be) cached
"""
import argparse

from petl_vision.zoo import ZOO, ZooDownloadError, cache_path, download, list_models, verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=['list', 'download', 'verify', 'path'])
    parser.add_argument('name', nargs='?', help='zoo name (see list) or a URL')
    parser.add_argument('--sha256', help='expected checksum, overriding the table')
    args = parser.parse_args()
    if args.command == 'list':
        for name in list_models():
            entry = ZOO[name]
            print(f'{name:40s} {entry.kind:9s} {entry.license:13s} {"pinned" if entry.sha256 else "unpinned"}')
        return
    if args.name is None:
        parser.error(f'{args.command} needs a NAME; python tools/zoo.py list shows them')
    try:
        if args.command == 'download':
            print(download(args.name, sha256=args.sha256))
        elif args.command == 'verify':
            print(f'{verify(args.name, sha256=args.sha256)}  {cache_path(args.name)}')
        else:
            path = cache_path(args.name)
            print(path if path.is_file() else f'{path} (not downloaded)')
    except (ZooDownloadError, FileNotFoundError, KeyError) as e:
        parser.exit(1, f'zoo.py {args.command}: {e.args[0]}\n')


if __name__ == '__main__':
    main()
