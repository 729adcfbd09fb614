"""JSON and Markdown reports of the kit."""
import json
import os
import os.path as osp

STATUSES = ('pass', 'fail', 'skipped')


def _fmt(v, nd=2):
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:.{nd}f}'
    return str(v)


def summarise(report: dict) -> dict:
    counts = {s: 0 for s in STATUSES}
    for check in report['checks'].values():
        for item in check['items']:
            counts[item.get('status', 'skipped')] += 1
    return counts


def targets(report: dict) -> list:
    """The issue's targets, met / not met / not measured."""
    from .rows import IMAGENET_TARGETS
    out = []
    # tiny sizes exercise the code, they measure nothing
    full = report['mode']['full_scale']
    rows = {i['name']: i for i in report['checks']['imagenet']['items']}
    for method, base, minimum in IMAGENET_TARGETS:
        m, b = rows.get(method), rows.get(base)
        ok = (m and b and m.get('status') == 'pass'
              and b.get('status') == 'pass')
        ratio = round(m['images_per_s'] / b['images_per_s'], 3) if ok \
            else None
        out.append(dict(
            target=f'{method} images/s >= {minimum}x {base}',
            value=ratio, met=None if ratio is None or not full else
            ratio >= minimum))
    km = [i for i in report['checks']['kmeans']['items']
          if i['name'] == 'kmeans-1.28M-x128-K10000']
    limit = 60.
    if km and km[0].get('status') == 'pass' and full:
        out.append(dict(target=f'k-means 1.28M x 128, K=10,000, 20 '
                        f'iterations < {limit:.0f} s',
                        value=km[0]['seconds'],
                        met=km[0]['seconds'] < limit))
    else:
        out.append(dict(target=f'k-means 1.28M x 128, K=10,000, 20 '
                        f'iterations < {limit:.0f} s', value=None,
                        met=None))
    return out


def add_ratios(report: dict) -> None:
    from .rows import IMAGENET_INFO_RATIOS
    items = report['checks']['imagenet']['items']
    rows = {i['name']: i for i in items}
    for item in items:
        b = rows.get(item.get('base'))
        if item.get('status') == 'pass' and b and b.get('status') == 'pass':
            item['ratio_to_base'] = round(
                item['images_per_s'] / b['images_per_s'], 3)
    for method, base in IMAGENET_INFO_RATIOS:
        m, b = rows.get(method), rows.get(base)
        if m and b and m.get('status') == 'pass' and b.get(
                'status') == 'pass':
            m.setdefault('other_ratios', {})[base] = round(
                m['images_per_s'] / b['images_per_s'], 3)


def _status(item):
    s = item.get('status', '?')
    return {'pass': 'pass', 'fail': '**FAIL**', 'skipped': 'skipped'}.get(
        s, s)


def _why(item):
    if item.get('status') == 'fail':
        if item.get('problems'):
            return '; '.join(item['problems'])[:300]
        err = (item.get('error') or '').strip().splitlines()
        return (err[-1] if err else '')[:300]
    if item.get('status') == 'skipped':
        return item.get('reason', '')[:300]
    return ''


def markdown(report: dict) -> str:
    m, env = report['mode'], report['env']
    lines = [
        '# mmssl_ext GPU validation report', '',
        f'- device: {env.get("gpu", "cpu")} ({m["device"]}'
        f'{", tiny sizes" if m["tiny"] else ""}); torch {env.get("torch")}'
        f' (CUDA {env.get("cuda_runtime")}), mmengine {env.get("mmengine")}'
        f', mmcv {env.get("mmcv")}, mmpretrain {env.get("mmpretrain")}, '
        f'mmssl_ext {env.get("mmssl_ext")} ({env.get("git_commit")})',
        f'- imports blocked for the run: {", ".join(m["forbid"]) or "none"}',
        f'- wall time {report.get("wall_s", 0):.0f} s of a '
        f'{m["budget_s"]:.0f} s guard; items: '
        + ', '.join(f'{v} {k}' for k, v in summarise(report).items()), '',
        '## Targets', '', '| target | value | met |', '|---|---|---|'
    ]
    for t in report.get('targets', []):
        met = '-' if t['met'] is None else ('yes' if t['met'] else '**no**')
        lines.append(f'| {t["target"]} | {_fmt(t["value"], 3)} | {met} |')

    c = report['checks']
    lines += ['', '## 1. Digits recipes: train, state on device, resume, '
              'CPU load', '',
              '| recipe | base | precision | status | iters | first / last '
              'loss | AMP scale min | kNN top-1 | resume identical | '
              'CPU load | note |',
              '|---|---|---|---|---|---|---|---|---|---|---|']
    for i in c['digits']['items']:
        tr = i.get('train', {})
        res = i.get('resume', {})
        cpu = i.get('cpu_load', {})
        lines.append(
            f'| {i.get("row", i["name"])} | {i.get("base") or "-"} | '
            f'{i.get("precision", "-")} | {_status(i)} | '
            f'{_fmt(tr.get("iterations"))} | {_fmt(tr.get("first_loss"), 3)}'
            f' / {_fmt(tr.get("last_loss"), 3)} | '
            f'{_fmt(tr.get("amp_scale_min"), 0)} | '
            f'{_fmt((i.get("val") or {}).get("knn/top1"), 1)} | '
            f'{_fmt(res.get("identical"))} | '
            f'{_fmt(cpu.get("identical")) if cpu else "-"} | {_why(i)} |')

    lines += ['', '## 2. ImageNet ResNet-50 recipes (synthetic images, real '
              'bank sizes)', '',
              '| recipe | base | status | views | images/s | ratio to base |'
              ' peak GiB | est. GiB (CPU) | measured / est. | optim | note |',
              '|---|---|---|---|---|---|---|---|---|---|---|']
    for i in c['imagenet']['items']:
        other = ', '.join(f'{v} vs {k}' for k, v in i.get(
            'other_ratios', {}).items())
        note = '; '.join(x for x in (i.get('note', ''), other, _why(i)) if x)
        lines.append(
            f'| {i["name"]} | {i.get("base") or "-"} | {_status(i)} | '
            f'{_fmt(i.get("views"))} | {_fmt(i.get("images_per_s"), 1)} | '
            f'{_fmt(i.get("ratio_to_base"), 3)} | '
            f'{_fmt(i.get("peak_mem_gib"))} | {_fmt(i.get("est_peak_gib"))} '
            f'| {_fmt(i.get("mem_ratio"), 3)} | '
            f'{i.get("optim_wrapper", "-")} | {note} |')

    lines += ['', '## 3. Machinery at ImageNet scale', '',
              '| item | status | size | time | peak extra GiB | note |',
              '|---|---|---|---|---|---|']
    for i in c['kmeans']['items']:
        if 'k' in i and 'iterations' in i:
            size = (f'{i["n"]} x {i["dim"]}, K={i["k"]}, '
                    f'{i["iterations"]} it' +
                    (f', PCA {i["pca_dim"]}' if i.get('pca_dim', -1) > 0
                     else ''))
            t = f'{_fmt(i.get("seconds"))} s'
        elif 'pool' in i:
            size = (f'bank {i["n"]}, batch {i["batch"]}, pool {i["pool"]},'
                    f' {i["neg_num"]} negatives')
            t = f'{_fmt(i.get("ms_per_call"))} ms/call'
        elif 'calls' in i:
            size = f'bank {i["n"]}, batch {i["batch"]}, top-{i["k"]}'
            t = f'{_fmt(i.get("ms_per_call"))} ms/call'
        else:
            size, t = '-', '-'
        lines.append(f'| {i["name"]} | {_status(i)} | {size} | {t} | '
                     f'{_fmt(i.get("peak_extra_gib"), 3)} | {_why(i)} |')

    d = c['ddp']
    lines += ['', '## 4. Two processes on one device', '',
              f'backend used: {d.get("backend") or "-"}; tried: '
              + (', '.join(f'{t["backend"]}: '
                           f'{"works" if t["works"] else "fails"}'
                           for t in d.get('tried', [])) or '-'), '',
              '| recipe | status | iters / rank | state identical on both '
              'ranks | note |', '|---|---|---|---|---|']
    for i in d['items']:
        lines.append(
            f'| {i["name"]} | {_status(i)} | {_fmt(i.get("iterations"))} |'
            f' {_fmt(i.get("identical"))} | {_why(i)} |')
    lines.append('')
    return '\n'.join(lines)


def write(report: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    add_ratios(report)
    report['summary'] = summarise(report)
    report['targets'] = targets(report)
    tmp = osp.join(out_dir, '.gpu_check.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(report, f, indent=1, default=str)
    os.replace(tmp, osp.join(out_dir, 'gpu_check.json'))
    with open(osp.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write(markdown(report))
