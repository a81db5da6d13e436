"""The reader's check opens real pages in headless Chromium and finds what is broken."""

import base64

import pytest

from widthprune.chapters.booktheme import root_favicon
from widthprune.chapters.browser import book_pages, check_pages, missing_icon

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "dot.png").write_bytes(PNG)
    page = "<html><head><title>{t}</title></head><body>{b}</body></html>"
    captioned = '<figure><img src="_images/dot.png"><figcaption>A dot.</figcaption></figure>'
    scrolled = '<div style="overflow-x:auto; max-width:100%"><table><tr>{}</tr></table></div>'
    cells = "".join(f"<td>column{i}</td>" for i in range(200))
    (tmp_path / "index.html").write_text(
        page.format(t="Good", b=captioned + scrolled.format(cells) + "<p>fine</p>")
    )
    (tmp_path / "layout.html").write_text(
        page.format(
            t="Layout",
            b='<main style="width:600px"><table><tr>' + cells + "</tr></table>"
            '<figure><img src="_images/dot.png"><figcaption> </figcaption></figure>'
            '<div class="cell_output"><img src="_images/dot.png"></div></main>',
        )
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
    (tmp_path / "favicon.ico").write_bytes(PNG)
    return tmp_path


def test_book_pages_skips_sphinx_pages(site):
    assert [p.as_posix() for p in book_pages(site)] == [
        "broken.html",
        "cell.html",
        "index.html",
        "layout.html",
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
        "layout.html": False,
        "script.html": False,
    }
    # a table wider than its column, a blank caption and a bare output image; the table in a
    # scroll box on the index page fits
    assert report.loc["layout.html", "wide_tables"] == ["column0"]
    assert report.loc["layout.html", "uncaptioned_figures"] == ["_images/dot.png"] * 2
    assert report.loc["index.html", "wide_tables"] == []
    assert report.loc["index.html", "uncaptioned_figures"] == []
    assert report.loc["broken.html", "broken_images"] == ["_images/missing.png"]
    assert report.loc["broken.html", "empty_figures"] == 1
    assert any("missing.png" in u for u in report.loc["broken.html", "failed_requests"])
    assert any("undefined_function_here" in e for e in report.loc["script.html", "console_errors"])
    assert report.loc["cell.html", "error_outputs"] == 1
    assert report.loc["index.html", "title"] == "Good"
    for shot in report.screenshot:
        assert open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# Jupyter Book's root page: a redirect to the first chapter, with no icon of its own
REDIRECT = '<meta http-equiv="Refresh" content="0; url=book/intro.html" />\n'


def test_missing_icon_is_the_root_favicon_of_a_page_that_declares_none(tmp_path):
    (tmp_path / "index.html").write_text(REDIRECT)
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.html").write_text(
        '<html><head><link rel="icon" href="../_static/favicon.png"/></head></html>'
    )
    (tmp_path / "book" / "other.html").write_text(
        '<html><head><link rel="shortcut icon" href="/_static/gone.png"/></head></html>'
    )
    (tmp_path / "book" / "remote.html").write_text(
        '<html><head><link rel="icon" href="https://example.org/i.png"/></head></html>'
    )
    assert missing_icon(tmp_path, "index.html") == "/favicon.ico"
    assert missing_icon(tmp_path, "book/intro.html") == "../_static/favicon.png"
    assert missing_icon(tmp_path, "book/other.html") == "/_static/gone.png"
    assert missing_icon(tmp_path, "book/remote.html") is None
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "favicon.png").write_bytes(PNG)
    (tmp_path / "favicon.ico").write_bytes(PNG)
    assert missing_icon(tmp_path, "index.html") is None
    assert missing_icon(tmp_path, "book/intro.html") is None
    assert missing_icon(tmp_path, "book/other.html") == "/_static/gone.png"


def test_the_book_theme_writes_the_favicon_that_the_root_redirect_needs(tmp_path):
    from PIL import Image
    from sphinx.application import Sphinx

    src, out = tmp_path / "src", tmp_path / "out"
    (src / "_static").mkdir(parents=True)
    Image.new("RGBA", (64, 64), (200, 40, 40, 255)).save(src / "_static" / "icon.png")
    (src / "conf.py").write_text(
        "extensions = ['widthprune.chapters.booktheme']\nhtml_favicon = '_static/icon.png'\n"
    )
    (src / "index.rst").write_text("Title\n=====\n\nText.\n")
    app = Sphinx(src, src, out, tmp_path / "doctrees", "html", status=None, warning=None)
    (out / "favicon.ico").unlink(missing_ok=True)
    app.build()
    (out / "index.html").write_text(REDIRECT)  # as Jupyter Book leaves the root of a book
    with Image.open(out / "favicon.ico") as icon:
        assert icon.format == "ICO"
        assert (16, 16) in icon.info["sizes"] and (64, 64) in icon.info["sizes"]
    assert missing_icon(out, "index.html") is None

    # without a favicon in the configuration there is nothing to write
    (out / "favicon.ico").unlink()
    app.config.html_favicon = None
    root_favicon(app, None)
    assert not (out / "favicon.ico").exists()
    assert missing_icon(out, "index.html") == "/favicon.ico"
