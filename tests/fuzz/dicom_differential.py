#!/usr/bin/python3
"""Differential check of medvision's DICOM decoder against pydicom (+ GDCM) on mutated files.

    dicom_differential.py --dump DICOM_DUMP --seeds DIR [--count N] [--seed S] [--out DIR]
                          [--keep-disagreements DIR]

Each mutant is a seed file (DIR, recursively) with 1 to 4 mutations: byte flips, "interesting"
values (0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff ...) written over 1, 2 or 4 bytes, values of the
pixel module (Rows, Columns, Bits Allocated/Stored, High Bit, Pixel Representation, Samples per
Pixel, Number of Frames, Planar Configuration, Photometric Interpretation) and of item/element
lengths changed, truncation, and a duplicated or deleted chunk; half of them within the first
2 KiB, where the header lives.

medvision (tests/conformance/dicom_dump, one process per batch; a crash is re-run file by file)
and pydicom (scripts/make_dicom_reference.py's reference: masked, modality LUT, colour converted;
one forked process per file) decode every mutant. Outcomes:
  agree          both decode, same pixels (exactly; lossy transfer syntaxes within the
                 conformance test's tolerance)
  mv-refuses     pydicom decodes, medvision refuses with a status (allowed: the rule is "agree or
                 refuse", never guess)
  pydicom-refuses / both-refuse
  DISAGREE       both decode, different pixels: a silent wrong answer on one side (fails)
  MV-CRASH       dicom_dump died (fails)
Exit status 1 when there is a DISAGREE or MV-CRASH. With --keep-disagreements the offending
mutants are copied there for triage.
"""
import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import make_dicom_reference as ref  # noqa: E402

PIXEL_TAGS = [(0x0028, 0x0010), (0x0028, 0x0011), (0x0028, 0x0100), (0x0028, 0x0101),
              (0x0028, 0x0102), (0x0028, 0x0103), (0x0028, 0x0002), (0x0028, 0x0008),
              (0x0028, 0x0006), (0x0028, 0x0004), (0x0028, 0x1052), (0x0028, 0x1053)]
INTERESTING = [0, 1, 2, 7, 8, 15, 16, 17, 31, 32, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
               0x10000, 0x7fffffff, 0x80000000, 0xffffffff]
LOSSY_TOL = (0.005, 0.05)


def tag_offsets(data, group, element):
    key = struct.pack('<HH', group, element)
    out, i = [], data.find(key)
    while i >= 0:
        out.append(i)
        i = data.find(key, i + 1)
    return out


def mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        head = rng.random() < 0.5
        limit = min(len(data), 2048) if head else len(data)
        pos = rng.randrange(limit)
        kind = rng.randrange(8)
        if kind == 0:
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[pos] = rng.choice([0, 1, 0x7f, 0x80, 0xff])
        elif kind == 2:
            width = rng.choice([2, 4])
            v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            data[pos:pos + width] = v.to_bytes(width, 'little')
        elif kind == 3:  # a pixel module value
            g, e = rng.choice(PIXEL_TAGS)
            offs = tag_offsets(bytes(data), g, e)
            if offs:
                o = rng.choice(offs)
                # explicit VR: tag(4) VR(2) len(2) value; implicit: tag(4) len(4) value
                vo = o + 8
                if vo + 2 <= len(data):
                    v = rng.choice(INTERESTING) & 0xffff
                    if data[o + 4:o + 6] in (b'IS', b'CS', b'DS'):
                        text = str(rng.choice([0, 1, 3, 65535, -1, 1 << 20])).encode()
                        n = struct.unpack_from('<H', data, o + 6)[0]
                        data[vo:vo + n] = text[:n].ljust(n, b' ')
                    else:
                        data[vo:vo + 2] = v.to_bytes(2, 'little')
        elif kind == 4:  # an item or element length
            offs = [i for i in range(0, len(data) - 8, 2)
                    if data[i:i + 4] == b'\xfe\xff\x00\xe0'] or [pos]
            o = rng.choice(offs)
            v = rng.choice(INTERESTING + [rng.randrange(1 << 16)])
            data[o + 4:o + 8] = (v & 0xffffffff).to_bytes(4, 'little')
        elif kind == 5:
            del data[rng.randrange(len(data) // 2, len(data)):]
        elif kind == 6:
            n = rng.randint(1, 64)
            data[pos:pos] = data[pos:pos + n]
        else:
            n = rng.randint(1, 64)
            del data[pos:pos + n]
    return bytes(data)


def run_dump(dump, paths, work):
    """{path: result} from dicom_dump; a batch that crashes is re-run file by file."""
    os.makedirs(work, exist_ok=True)
    list_path = os.path.join(work, 'list.txt')
    with open(list_path, 'w') as f:
        f.writelines(p + '\n' for p in paths)
    proc = subprocess.run([dump, list_path, work], capture_output=True, timeout=1800)
    if proc.returncode == 0:
        out = {}
        for i, p in enumerate(paths):
            with open(os.path.join(work, f'{i}.json'), encoding='utf-8') as f:
                r = json.load(f)
            r['npy'] = os.path.join(work, f'{i}.npy')
            out[p] = r
        return out
    if len(paths) == 1:
        return {paths[0]: {'status': 'MV-CRASH', 'message': f'exit {proc.returncode}: ' +
                           proc.stderr.decode(errors='replace')[-2000:]}}
    out = {}
    for i, p in enumerate(paths):
        out.update(run_dump(dump, [p], os.path.join(work, f'single{i}')))
    return out


def compare(mv, reference, lossy):
    if mv.shape != reference.shape:
        return f'shape {mv.shape} vs {reference.shape}'
    diff = np.abs(mv.astype(np.float64) - reference.astype(np.float64))
    if lossy:
        span = float(np.ptp(reference)) if reference.size else 0.0
        if diff.mean() <= max(1.0, LOSSY_TOL[0] * span) and diff.max() <= max(8.0, LOSSY_TOL[1] * span):
            return None
    elif np.array_equal(mv, reference, equal_nan=True):
        return None
    elif np.allclose(mv, reference, rtol=1e-5, atol=1e-5 * max(1.0, float(np.nanmax(np.abs(reference))))):
        return None
    return f'max |diff| {np.nanmax(diff):g}, {int((diff > 0).sum())} of {diff.size} values differ'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dump', required=True)
    ap.add_argument('--seeds', required=True)
    ap.add_argument('--count', type=int, default=100)
    ap.add_argument('--seed', type=int, default=19)
    ap.add_argument('--max-seed-bytes', type=int, default=512 * 1024)
    ap.add_argument('--out', default='')
    ap.add_argument('--keep-disagreements', default='')
    ap.add_argument('--generate', action='store_true',
                    help='first write the conformance fixtures (fragments, edge cases) to --seeds')
    a = ap.parse_args()
    if a.generate:
        sys.path.insert(0, os.path.join(ROOT, 'tests', 'conformance'))
        import make_dicom_edge_cases
        import make_fragmented_dicom
        quiet = os.dup(2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # GDCM's warnings
        try:
            make_fragmented_dicom.main(os.path.join(a.seeds, 'fragments'))
            make_dicom_edge_cases.main(os.path.join(a.seeds, 'edge-cases'))
        finally:
            os.dup2(quiet, 2)
        # Only seeds that pydicom 2.3 itself decodes right: it mis-groups many of the split
        # variants (GDCM with a 2-byte first fragment, multi-frame splits without a table), which
        # would show up as disagreements that are pydicom's.
        for d, _, fs in os.walk(a.seeds):
            for f in fs:
                keep = f.endswith('.dcm') and (
                    '_whole_' in f or f.endswith('_base.dcm') or f.startswith(
                        ('group-length', 'charset_written')))
                if not keep:
                    os.remove(os.path.join(d, f))
    rng = random.Random(a.seed)
    seeds = sorted(os.path.join(d, f) for d, _, fs in os.walk(a.seeds) for f in fs
                   if os.path.getsize(os.path.join(d, f)) <= a.max_seed_bytes
                   and not f.endswith(('.npy', '.json', '.txt')))
    if not seeds:
        sys.exit(f'no seed files under {a.seeds}')
    work = a.out or tempfile.mkdtemp(prefix='mv-differential-')
    mutants_dir = os.path.join(work, 'mutants')
    ref_dir = os.path.join(work, 'pydicom')
    os.makedirs(mutants_dir, exist_ok=True)
    os.makedirs(ref_dir, exist_ok=True)
    paths = []
    for i in range(a.count):
        src = rng.choice(seeds)
        p = os.path.join(mutants_dir, f'{i:05d}_{os.path.basename(src)}')
        with open(src, 'rb') as f:
            data = mutate(f.read(), rng)
        with open(p, 'wb') as f:
            f.write(data)
        paths.append(p)
    mv = run_dump(a.dump, paths, os.path.join(work, 'medvision'))
    quiet = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # GDCM and libjpeg print on damaged data
    try:
        rows = ref.run_isolated([(i, '/', os.path.relpath(p, '/'), ref_dir)
                                 for i, p in enumerate(paths)], workers=2, timeout=60)
    finally:
        os.dup2(quiet, 2)
    counts, failures = {}, []
    for p, row in zip(paths, rows):
        m = mv[p]
        py_ok = row[1] == 'ok'
        if m['status'] == 'MV-CRASH':
            outcome = 'MV-CRASH'
        elif m['status'] == 'MV_OK' and py_ok:
            problem = compare(np.load(m['npy']), np.load(os.path.join(ref_dir, row[5])),
                              row[3] == '1')
            outcome = 'agree' if problem is None else 'DISAGREE'
            if problem:
                m['message'] = problem
        elif m['status'] == 'MV_OK':
            outcome = 'pydicom-refuses'
        elif py_ok:
            outcome = 'mv-refuses'
        else:
            outcome = 'both-refuse'
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome in ('DISAGREE', 'MV-CRASH'):
            failures.append(f'{outcome} {p}: {m["message"]}')
            if a.keep_disagreements:
                os.makedirs(a.keep_disagreements, exist_ok=True)
                shutil.copy(p, a.keep_disagreements)
    print(json.dumps(dict(mutants=a.count, seeds=len(seeds), seed=a.seed, **counts)))
    for f in failures:
        print(f)
    if not a.out:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
