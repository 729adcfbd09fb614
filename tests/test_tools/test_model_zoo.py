"""model-index.yml and configs/<method>/metafile.yml: OpenMMLab structure,
in step with the config folders, no invented results, direct file URLs,
read whole by modelindex (the loader of ``mim search`` / ``mim download``)."""
import importlib.util
import os.path as osp
import re
from urllib.parse import urlparse

import yaml

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _zoo():
    spec = importlib.util.spec_from_file_location(
        '_model_zoo', osp.join(ROOT, 'tools', 'benchmarks', 'model_zoo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


zoo = _zoo()


def test_index_lists_every_config_and_only_existing_ones():
    problems = zoo.check()
    assert not problems, (
        '\n'.join(problems) + '\nrun: python tools/benchmarks/model_zoo.py '
        '--write')


def test_metafile_structure_and_honest_rows():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import']
    names = set()
    for path in index['Import']:
        with open(osp.join(ROOT, path)) as f:
            meta = yaml.safe_load(f)
        (coll, ) = meta['Collections']
        # every collection is a paper but the composition recipes (this
        # package's combinations of the methods' branches)
        assert coll['Name'] and (coll['Name'] == 'Composition' or
                                 coll['Paper']['URL'].startswith('https://'))
        for row in meta['Models']:
            assert row['Name'] not in names  # unique across the zoo
            names.add(row['Name'])
            assert row['In Collection'] == coll['Name']
            if 'Converted From' in row:  # released by the authors / MMSelfSup
                assert re.search(r'_(authors|mmselfsup-[01]x)$', row['Name'])
                if 'Config' in row:  # this package's recipe of the setting
                    assert osp.isfile(osp.join(ROOT, row['Config']))
                continue
            assert osp.isfile(osp.join(ROOT, row['Config']))
            assert row['Name'] == osp.splitext(osp.basename(
                row['Config']))[0]
            # a row with results must point at the checkpoint they came
            # from; a row without a checkpoint claims no results
            if row.get('Results'):
                assert str(row.get('Weights', '')).startswith('http')
            if 'Weights' not in row:
                assert row['Results'] is None


def test_parse_name():
    meta = zoo.parse_name('interclr-moco_resnet50_8xb32-coslr-200e_in1k')
    assert meta == {'Batch Size': 256, 'Epochs': 200,
                    'Training Data': 'ImageNet-1k',
                    'Architecture': ['ResNet-50']}
    meta = zoo.parse_name('ccrop-byol_resnet18-cifar_1xb512-coslr-500e_stl10')
    assert meta['Batch Size'] == 512 and meta['Epochs'] == 500
    assert meta['Architecture'] == ['ResNet-18 (CIFAR stem)']


def test_write_keeps_hand_filled_fields(tmp_path):
    root = tmp_path
    (root / 'configs' / 'mocov2').mkdir(parents=True)
    (root / 'configs' / 'mocov2' /
     'mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py').write_text('x = 1\n')
    zoo.write(str(root))
    path = root / 'configs' / 'mocov2' / 'metafile.yml'
    meta = yaml.safe_load(path.read_text())
    row = meta['Models'][0]
    assert row['Results'] is None and 'Weights' not in row
    row['Results'] = [{'Task': 'Image Classification',
                       'Dataset': 'Digits', 'Metrics': {'Top 1': 1.0}}]
    row['Weights'] = 'https://example.org/m-0123abcd.pth'
    row['Weights SHA256 Prefix'] = '0123abcd'
    row['Training Log'] = 'https://example.org/m.log.json'
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
    zoo.write(str(root))
    row2 = yaml.safe_load(path.read_text())['Models'][0]
    for key in ('Results', 'Weights', 'Weights SHA256 Prefix',
                'Training Log'):
        assert row2[key] == row[key]
    assert zoo.check(str(root)) == []
    (root / 'configs' / 'mocov2' / 'new_resnet18_1xb8-10e_digits.py'
     ).write_text('x = 1\n')
    assert any('does not list' in p for p in zoo.check(str(root)))


def _rows():
    rows = []
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        for path in yaml.safe_load(f)['Import']:
            with open(osp.join(ROOT, path)) as g:
                rows += yaml.safe_load(g)['Models']
    return rows


def _released_rows():
    return [r for r in _rows() if 'Converted From' in r]


#: what a checkpoint file is called (mim download saves the URL's basename)
_FILE = re.compile(r'[^/]+\.(pth|pth\.tar|pt|ckpt|safetensors)$')


def _is_direct_file_url(url) -> bool:
    u = urlparse(str(url))
    return (u.scheme == 'https' and bool(u.netloc) and not u.query
            and 'drive.google.com' not in u.netloc
            and bool(_FILE.search(u.path)))


def test_direct_file_url_rule():
    assert _is_direct_file_url(
        'https://download.openmmlab.com/mmselfsup/x/a_20220225-5fbbda2a.pth')
    assert _is_direct_file_url('https://example.org/a/ckpt.pth.tar')
    for bad in ('https://drive.google.com/file/d/ID/view?usp=sharing',
                'https://drive.google.com/uc?id=ID', 'http://example.org/a.pth',
                'https://example.org/a.pth?download=1',
                'https://example.org/page.html', 'DOWNLOADED.pth', None):
        assert not _is_direct_file_url(bad), bad


def test_every_weights_is_a_direct_file_url_and_digests_are_digests():
    checked = 0
    for row in _rows():
        entries = [row] + list(row.get('Downstream') or [])
        for entry in entries:
            if 'Weights' not in entry:
                continue
            checked += 1
            assert _is_direct_file_url(entry['Weights']), (
                row['Name'], entry['Weights'])
        if 'Weights SHA256' in row:
            assert re.fullmatch(r'[0-9a-f]{64}', str(row['Weights SHA256']))
        if 'Weights SHA256 Prefix' in row:
            prefix = str(row['Weights SHA256 Prefix'])
            assert re.fullmatch(r'[0-9a-f]{8,63}', prefix)
            from mmssl_ext.utils import hub
            name_hash = hub.hash_prefix_from_name(row['Weights'])
            assert name_hash is None or name_hash == prefix
        if 'Training Log' in row:
            u = urlparse(row['Training Log'])
            assert u.scheme == 'https' and u.path.endswith('.json')
        if 'Download' in row:  # a share page: how to fetch, where it is
            page = row['Converted From']['Weights']
            assert 'drive.google.com/file/d/' in page and 'Weights' not in row
            file_id = page.split('/file/d/')[1].split('/')[0]
            assert file_id in row['Download'] and 'gdown' in row['Download']
    assert checked >= 5  # InterCLR, NPID x2, ODC, DeepCluster


def test_modelindex_reads_every_metafile_without_dropping_fields():
    """modelindex (what ``mim search`` / ``mim download`` load) keeps every
    field of a row but the extra keys of a result (it keeps Task, Dataset,
    Metrics only): the protocol and who reported a number must be in the
    Task name."""
    from modelindex.load_model_index import load
    mi = load(osp.join(ROOT, 'model-index.yml'))
    # modelindex resolves README against the metafile's folder, OpenMMLab
    # (and mmengine) against the repository root: the only errors allowed
    for err in mi.check(silent=True):
        m = re.search(r'Path to README file (\S+) is not a valid file', err)
        assert m and osp.isfile(osp.join(ROOT, m.group(1))), err
    loaded = {m.name: m for m in mi.models}
    raw = _rows()
    assert len(loaded) == len(raw)
    assert {c.name for c in mi.collections} == {
        r['In Collection'] for r in raw}
    for row in raw:
        model = loaded[row['Name']]
        for key, value in row.items():
            if key == 'Results':
                continue
            got = model.data[key]
            if key == 'Metadata':
                got = got.data
            assert got == value, (row['Name'], key)
        results = row.get('Results') or []
        got = [r.data for r in (model.results or [])]
        assert got == [{k: r[k] for k in ('Task', 'Dataset', 'Metrics')}
                       for r in results]
        for res in got:  # what survives says who reported it, and how
            by = 'the authors' if row['Name'].endswith('_authors') else \
                'MMSelfSup'
            assert res['Task'].endswith(f'; reported by {by})'), res
            assert re.search(r'\(.+; reported by', res['Task'])


def test_released_rows_url_numbers_marked_and_conversion():
    import shlex
    spec = importlib.util.spec_from_file_location(
        '_ebw_zoo', osp.join(ROOT, 'tools', 'model_converters',
                             'extract_backbone_weights.py'))
    ebw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ebw)
    rows = _released_rows()
    # InterCLR (MMSelfSup 0.x zoo), InvP, CLD MoCo v2 x2; MMSelfSup's NPID
    # (0.x, 1.x), ODC, DeepCluster. CLD's InfoMin checkpoints have no recipe
    # here and no row (mim and mmengine need a Config in every row)
    assert sorted(r['In Collection'] for r in rows) == sorted(
        ['InterCLR', 'InvP'] + ['CLD'] * 2 + ['NPID'] * 2 +
        ['ODC', 'DeepCluster'])
    assert all('Config' in r for r in _rows())
    for row in rows:
        source = row['Converted From']['Weights']
        assert source.startswith('https://')
        if 'Weights' in row:
            assert row['Weights'] == source
        assert row['Converted From']['Code'].startswith('https://github.com/')
        by = 'the authors' if row['Name'].endswith('_authors') else \
            'MMSelfSup'
        for res in row['Results']:
            assert res['Reported By'].startswith(by)
            assert all(0 < v < 100 for v in res['Metrics'].values())
        # the conversion command is a valid call of the converter
        argv = shlex.split(row['Conversion'])
        assert argv[:2] == ['python', 'tools/model_converters/'
                            'extract_backbone_weights.py']
        args = ebw.parse_args(argv[2:])
        assert args.depth == 50 or osp.isfile(osp.join(ROOT, args.config))
        assert args.checkpoint in (row.get('Weights'), 'DOWNLOADED.pth',
                                   'DOWNLOADED.pth.tar')
        if 'Config' in row:
            assert osp.isfile(osp.join(ROOT, row['Config']))
    # CLD's MoCo v2 script pickles its optimizer and args
    by_name = {r['Name']: r for r in rows}
    assert '--allow-pickle' in by_name[
        'cld-mocov2-mlp_resnet50_200e_in1k_authors']['Conversion']
    assert '--allow-pickle' not in by_name[
        'invp_resnet50_800e_in1k_authors']['Conversion']
    # DeepCluster's Sobel ResNet-50 takes 2 input channels: verified
    # against this package's recipe
    dc = by_name['deepcluster-sobel_resnet50_8xb64-steplr-200e_in1k_'
                 'mmselfsup-0x']
    assert f"--config {dc['Config']}" in dc['Conversion']


def test_release_hashes_are_the_file_name_suffix():
    from mmssl_ext.utils import hub
    rows = [r for r in _released_rows() if 'Weights' in r]
    assert len(rows) == 5
    for row in rows:
        # OpenMMLab names published files <name>_<date>-<sha256[:8]>.pth
        assert hub.hash_prefix_from_name(row['Weights']) == \
            row['Weights SHA256 Prefix']
        assert hub.lookup_sha256(row['Weights']) == \
            row['Weights SHA256 Prefix']
    (interclr, ) = [r for r in rows if r['In Collection'] == 'InterCLR']
    assert interclr['Weights SHA256 Prefix'] == '38f8fdaf'


def test_root_configs_are_aliases_of_indexed_recipes(tmp_path):
    assert zoo._alias_bases(osp.join(ROOT, 'configs', 'interclr_r50.py')) == [
        'interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py']
    alias = tmp_path / 'a.py'
    alias.write_text('# comment\n_base_ = ["x.py"]\n')
    assert zoo._alias_bases(str(alias)) == ['x.py']
    alias.write_text('_base_ = ["x.py"]\nmodel = dict(depth=18)\n')
    assert zoo._alias_bases(str(alias)) is None
    # a recipe dropped directly under configs/ is reported
    (tmp_path / 'configs' / 'mocov2').mkdir(parents=True)
    (tmp_path / 'configs' / 'mocov2' /
     'mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py').write_text('x = 1\n')
    zoo.write(str(tmp_path))
    (tmp_path / 'configs' / 'ok.py').write_text(
        "_base_ = ['mocov2/mocov2_resnet18-cifar_1xb64-coslr-20e_digits.py']"
        "\n")
    assert zoo.check(str(tmp_path)) == []
    (tmp_path / 'configs' / 'stray.py').write_text('model = dict()\n')
    assert any('configs/stray.py' in p for p in zoo.check(str(tmp_path)))
