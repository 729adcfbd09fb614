"""model-index.yml and configs/<method>/metafile.yml: OpenMMLab structure,
in step with the config folders, no invented results."""
import importlib.util
import os.path as osp

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
        assert coll['Name'] and coll['Paper']['URL'].startswith('https://')
        for row in meta['Models']:
            assert row['Name'] not in names  # unique across the zoo
            names.add(row['Name'])
            assert row['In Collection'] == coll['Name']
            if 'Converted From' in row:  # released by the authors
                assert row['Name'].endswith('_authors')
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
    row['Weights SHA256'] = '0123abcd'
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
    zoo.write(str(root))
    row2 = yaml.safe_load(path.read_text())['Models'][0]
    for key in ('Results', 'Weights', 'Weights SHA256'):
        assert row2[key] == row[key]
    assert zoo.check(str(root)) == []
    (root / 'configs' / 'mocov2' / 'new_resnet18_1xb8-10e_digits.py'
     ).write_text('x = 1\n')
    assert any('does not list' in p for p in zoo.check(str(root)))


def _released_rows():
    rows = []
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        for path in yaml.safe_load(f)['Import']:
            with open(osp.join(ROOT, path)) as g:
                rows += [r for r in yaml.safe_load(g)['Models']
                         if 'Converted From' in r]
    return rows


def test_released_rows_url_numbers_by_authors_and_conversion():
    import shlex
    spec = importlib.util.spec_from_file_location(
        '_ebw_zoo', osp.join(ROOT, 'tools', 'model_converters',
                             'extract_backbone_weights.py'))
    ebw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ebw)
    rows = _released_rows()
    # InterCLR (MMSelfSup 0.x zoo), InvP, CLD MoCo v2 x2, CLD InfoMin x2
    assert {r['In Collection'] for r in rows} == {'InterCLR', 'InvP', 'CLD'}
    assert len(rows) == 6
    for row in rows:
        url = row['Weights']
        assert url == row['Converted From']['Weights']
        assert url.startswith('https://')
        assert row['Converted From']['Code'].startswith('https://github.com/')
        for res in row['Results']:
            assert res['Reported By'].startswith('authors: ')
            assert all(0 < v < 100 for v in res['Metrics'].values())
        if 'drive.google.com' in url:
            assert 'Download' in row  # a share page, not a file
        # the conversion command is a valid call of the converter
        argv = shlex.split(row['Conversion'])
        assert argv[:2] == ['python', 'tools/model_converters/'
                            'extract_backbone_weights.py']
        args = ebw.parse_args(argv[2:])
        assert args.depth == 50
        assert args.checkpoint in (url, 'DOWNLOADED.pth',
                                   'DOWNLOADED.pth.tar')
    # CLD's MoCo v2 script pickles its optimizer and args
    by_name = {r['Name']: r for r in rows}
    assert '--allow-pickle' in by_name[
        'cld-mocov2-mlp_resnet50_200e_in1k_authors']['Conversion']
    assert '--allow-pickle' not in by_name[
        'cld-infomin-mlp_resnet50_100e_in1k_authors']['Conversion']


def test_interclr_release_hash_is_the_file_name_suffix():
    from mmssl_ext.utils import hub
    (row, ) = [r for r in _released_rows() if r['In Collection'] ==
               'InterCLR']
    # OpenMMLab names published files <name>_<date>-<sha256[:8]>.pth
    assert hub.hash_prefix_from_name(row['Weights']) == \
        row['Weights SHA256'] == '38f8fdaf'
    assert hub.lookup_sha256(row['Weights']) == '38f8fdaf'
