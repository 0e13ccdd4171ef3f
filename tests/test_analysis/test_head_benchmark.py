"""nlseg.analysis.head_benchmark and the shared harness nlseg.analysis.benchmark: every mmseg
context head of ``bench_cases/context.py`` builds and runs one case in-process."""
from nlseg.analysis import benchmark as harness
from nlseg.analysis import head_benchmark as bench

CONTEXT_CASES = ['mmseg_dnlhead', 'mmseg_gchead', 'mmseg_cchead', 'mmseg_emahead',
                 'mmseg_isahead', 'mmseg_ocrhead', 'mmseg_annhead', 'mmseg_psphead',
                 'mmseg_aspphead']


def test_context_heads_build_and_run_tiny():
    """Every mmseg context head row exists and runs the benchmark's measurements (in this
    process, 1 x 32 x 8 x 8, channels 16: a few seconds); DAHead is an anchor."""
    assert 'context' in harness.list_families()
    assert sorted(harness.load_cases('context', 32, 16)) == sorted(CONTEXT_CASES)
    assert 'mmseg_dahead' in harness.load_cases('anchors', 32, 16)
    args = bench.parse_args(['--size', '8', '--in-channels', '32', '--channels', '16',
                             '--repeats', '1', '--warmup', '0'])
    rows = {name: bench.run_case('context', name, args) for name in CONTEXT_CASES}
    for name, row in rows.items():
        assert 'error' not in row, name
        assert row['params_m'] > 0 and row['macs_all_g'] >= row['macs_g'] > 0, name
        assert row['train_s'] > 0 and row['infer_s'] > 0, name
    # the OCR case counts its FCN: more parameters than OCRHead alone
    ocr_alone = sum(p.numel() for p in harness.load_cases('context', 32, 16)['mmseg_ocrhead']()
                    .ocr.parameters()) / 1e6
    assert rows['mmseg_ocrhead']['params_m'] > ocr_alone
