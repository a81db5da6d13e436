"""The reader's check opens real pages in headless Chromium and finds what is broken."""

import base64

import pytest

from widthprune.chapters.browser import book_pages, check_pages

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "dot.png").write_bytes(PNG)
    page = "<html><head><title>{t}</title></head><body>{b}</body></html>"
    (tmp_path / "index.html").write_text(
        page.format(t="Good", b='<figure><img src="_images/dot.png"></figure><p>fine</p>')
    )
    (tmp_path / "broken.html").write_text(
        page.format(t="Broken", b='<img src="_images/missing.png"><figure><p>no image</p></figure>')
    )
    (tmp_path / "script.html").write_text(
        page.format(t="Script", b="<script>undefined_function_here();</script>")
    )
    (tmp_path / "cell.html").write_text(
        page.format(
            t="Cell", b='<div class="cell_output"><div class="output traceback">E</div></div>'
        )
    )
    (tmp_path / "search.html").write_text(page.format(t="Search", b=""))
    return tmp_path


def test_book_pages_skips_sphinx_pages(site):
    assert [p.as_posix() for p in book_pages(site)] == [
        "broken.html",
        "cell.html",
        "index.html",
        "script.html",
    ]
    with pytest.raises(FileNotFoundError, match="index.html"):
        book_pages(site / "_images")


@pytest.mark.browser
def test_check_pages_finds_each_problem(site, tmp_path_factory):
    shots = tmp_path_factory.mktemp("shots")
    report = check_pages(site, screenshots=shots).set_index("page")
    assert report.ok.to_dict() == {
        "broken.html": False,
        "cell.html": False,
        "index.html": True,
        "script.html": False,
    }
    assert report.loc["broken.html", "broken_images"] == ["_images/missing.png"]
    assert report.loc["broken.html", "empty_figures"] == 1
    assert any("missing.png" in u for u in report.loc["broken.html", "failed_requests"])
    assert any("undefined_function_here" in e for e in report.loc["script.html", "console_errors"])
    assert report.loc["cell.html", "error_outputs"] == 1
    assert report.loc["index.html", "title"] == "Good"
    for shot in report.screenshot:
        assert open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
