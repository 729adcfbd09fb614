"""Own lines of every method of the package, and of the shared parts.

    python tools/analysis_tools/method_lines.py [--root mmssl_ext]

A method's *own* code is its package under ``mmssl_ext/models/<method>/``
(algorithm, heads, necks, losses, samplers) or, for ContrastiveCrop, its
transform, data-set wrapper and hook; what several methods use (memories,
the two-view frameworks, the hooks of the memories, k-means, kNN search) is
counted once, under "shared". Two figures per file:

* ``lines``: physical lines (``wc -l``);
* ``code``: lines holding code, i.e. without blank lines, comments and
  docstrings (a docstring is a string expression standing alone as a
  statement).

The table below maps every method to its files (paths under ``--root``);
a path that does not exist is reported, so the table cannot silently rot
when files move. Update it when a file moves. (The figures before the
per-method packages: run this script of commit 2761f14.)
"""
import argparse
import ast
import io
import os.path as osp
import sys
import tokenize

METHODS = {
    'InterCLR': [
        'models/interclr/interclr.py',
        'models/interclr/inter_image_branch.py',
        'models/interclr/neg_sampling.py',
        'models/interclr/margin_head.py',
    ],
    'BSIM': [
        'models/bsim/bsim.py',
        'models/bsim/mixture_branch.py',
        'models/bsim/instance_mix.py',
        'models/bsim/joint_loss.py',
    ],
    'InvP': [
        'models/invp/invp.py',
        'models/invp/invp_loss.py',
        'models/invp/neighbour_memory.py',
    ],
    'CLD': [
        'models/cld/cld.py',
        'models/cld/group_branch.py',
        'models/cld/cld_head.py',
        'models/cld/cld_neck.py',
        'models/cld/ncut.py',
    ],
    'ContrastiveCrop': [
        'ccrop/hook.py',
        'ccrop/box_store.py',
        'ccrop/transform.py',
    ],
    'NPID': ['models/algorithms/npid.py'],
    'ODC': ['models/algorithms/odc.py'],
    'DeepCluster': ['models/algorithms/deepcluster.py'],
}

SHARED = {
    'memories': [
        'models/memories/base.py',
        'models/memories/feature_memory.py',
        'models/memories/cluster_memory.py',
        'models/memories/queue.py',
    ],
    'two-view frameworks': [
        'models/algorithms/ring_moco.py',
        'models/algorithms/siamese.py',
        'models/algorithms/composed.py',
    ],
    'hooks of the memories': [
        'engine/hooks/memory_check_hook.py',
        'engine/hooks/offline_cluster_hook.py',
        'engine/hooks/cluster_memory_hook.py',
        'engine/hooks/model_param_schedule_hook.py',
    ],
    'memory-bank kNN monitor': ['engine/runners/memory_bank_knn_loop.py'],
    'model utils': [
        'models/utils/kmeans.py',
        'models/utils/knn.py',
        'utils/seeding.py',
    ],
}


def _docstring_lines(tree: ast.AST) -> set:
    lines = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def count(path: str) -> tuple:
    """(physical lines, code lines) of a Python file."""
    with open(path, encoding='utf-8') as f:
        src = f.read()
    physical = src.count('\n') + (0 if src.endswith('\n') or not src else 1)
    docs = _docstring_lines(ast.parse(src))
    code = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                        tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER):
            continue
        for line in range(tok.start[0], tok.end[0] + 1):
            if line not in docs:
                code.add(line)
    return physical, len(code)


def table(groups: dict, root: str, out) -> None:
    for name, files in groups.items():
        total_l = total_c = 0
        rows = []
        for rel in files:
            path = osp.join(root, rel)
            if not osp.isfile(path):
                rows.append(f'    {rel}: MISSING (update the table)')
                continue
            lines, code = count(path)
            total_l, total_c = total_l + lines, total_c + code
            rows.append(f'    {rel}: {lines} lines, {code} code')
        print(f'{name}: {total_l} lines, {total_c} code', file=out)
        for row in rows:
            print(row, file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default=osp.join(
        osp.dirname(osp.abspath(__file__)), '..', '..', 'mmssl_ext'))
    args = parser.parse_args(argv)
    root = osp.normpath(args.root)
    print('== methods (own files) ==')
    table(METHODS, root, sys.stdout)
    print('== shared ==')
    table(SHARED, root, sys.stdout)
    missing = [f for g in (METHODS, SHARED) for fs in g.values() for f in fs
               if not osp.isfile(osp.join(root, f))]
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
