"""bench.profile: py-spy's collapsed stacks summed into self / inclusive / per-thread shares."""

from bench.profile import frame_label, main, parse, summarize

RAW = """\
_bootstrap (threading.py:1002);run (threading.py:982);_worker (concurrent/futures/thread.py:81) 2
<module> (vllama/__main__.py:4);run (asyncio/runners.py:118);dumps (vllama/api/errors.py:24);encode (json/encoder.py:200) 3
<module> (vllama/__main__.py:4);run (asyncio/runners.py:118);process_outputs (vllm/v1/engine/output_processor.py:600) 5
"""


def test_frame_labels_keep_the_module_and_function():
    assert frame_label("dumps (vllama/api/errors.py:24)") == "errors.py:dumps"
    assert frame_label("<module> (<frozen runpy>)") == "<frozen runpy>:<module>"
    assert frame_label("odd") == "odd"


def test_summary_shares(tmp_path, capsys):
    out = summarize(parse(RAW.splitlines()))
    assert out["samples"] == [("total", 10)]
    assert dict(out["self"])["encoder.py:encode"] == 0.3
    assert dict(out["inclusive"])["errors.py:dumps"] == 0.3
    assert dict(out["inclusive"])["runners.py:run"] == 0.8
    assert dict(out["threads"])["__main__.py:<module>"] == 0.8
    path = tmp_path / "p.txt"
    path.write_text(RAW)
    main([str(path), "--top", "3"])
    assert "10 samples" in capsys.readouterr().out
