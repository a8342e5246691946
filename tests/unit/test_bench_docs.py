"""The benchmarks' `--write-docs`: new figures replace old ones, and what a person wrote
below them about what they mean stays."""

from bench.docs_section import END, replace, shown_command, stamp

DOC = """# Benchmarks

## Transfer

Intro.

### Current figures

| old | 1 |

{end}

### Command-line peer figures

| cli | old |

{end}

Where the CLI's time goes: written by hand.

### Goals

Kept.
""".replace("{end}", END)


def test_new_figures_replace_the_old_and_the_text_below_them_stays() -> None:
    out = replace(DOC, "### Command-line peer figures", "| cli | new |", within="## Transfer")
    assert "| cli | new |" in out
    assert "| cli | old |" not in out
    assert "Where the CLI's time goes: written by hand." in out
    assert out.count(END) == 2
    assert out.index("| cli | new |") < out.index(END, out.index("| cli | new |"))
    assert out.index("| cli | new |") < out.index("Where the CLI's time goes")
    # Everything outside the section is byte for byte what it was.
    a, b = DOC.split("| cli | old |")
    assert out.startswith(a) and out.endswith(b)


def test_a_section_without_the_marker_is_replaced_up_to_the_next_heading() -> None:
    old = "## Transfer\n\n### Current figures\n\n| old |\n\nstale words\n\n### Goals\n\nKept.\n"
    out = replace(old, "### Current figures", "| new |", within="## Transfer")
    assert out == f"## Transfer\n\n### Current figures\n\n| new |\n\n{END}\n\n### Goals\n\nKept.\n"


def test_a_new_section_goes_after_the_one_named() -> None:
    doc = DOC.replace("### Command-line peer figures", "### Other figures")
    out = replace(
        doc, "### Resume figures", "| r |", within="## Transfer", after="### Current figures"
    )
    assert (
        out.index("| old | 1 |") < out.index("### Resume figures") < out.index("### Other figures")
    )
    assert replace("# B\n", "### X", "y", within="## Transfer").endswith(
        f"## Transfer\n\n### X\n\ny\n\n{END}\n"
    )


def test_the_command_shown_leaves_out_where_the_raw_figures_went() -> None:
    argv = [
        "--sizes",
        "64",
        "--json",
        "/tmp/x.json",
        "--write-docs",
        "--from-json=/tmp/y",
        "--runs",
        "3",
    ]
    assert shown_command(argv) == ["--sizes", "64", "--runs", "3"]


def test_figures_reported_later_keep_the_time_they_were_measured() -> None:
    assert stamp(86400 * 365) == "1971-01-01 00:00 UTC"
