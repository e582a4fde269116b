#!/usr/bin/env python3
"""debian/copyright (DEP-5) for the wgnetconf package, generated from
`cargo metadata`: every crate statically linked into the binary (normal
dependencies of the wgnetconf package for the target platform, proc-macros
left out: they run at build time only), with its license expression and
the copyright lines of its license files, plus libyang, bundled by
libyang5-sys (BSD-3-Clause). Reads the metadata JSON on stdin, writes the
file to stdout; fails if a linked crate has no license."""
import json
import os
import re
import sys

LICENSE_TEXTS = {
    "MIT": """Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:
.
The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.
.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.""",
    "Apache-2.0": """On Debian systems, the complete text of the Apache License, Version 2.0
can be found in /usr/share/common-licenses/Apache-2.0.""",
    "BSD-3-Clause": """Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:
.
1. Redistributions of source code must retain the above copyright notice,
   this list of conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.
3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from this
   software without specific prior written permission.
.
THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE.""",
    "BSD-2-Clause": """Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:
.
1. Redistributions of source code must retain the above copyright notice,
   this list of conditions and the following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.
.
THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE.""",
    "ISC": """Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.
.
THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.""",
    "Unlicense": """This is free and unencumbered software released into the public domain.
.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute
this software, either in source code form or as a compiled binary, for any
purpose, commercial or non-commercial, and by any means.
.
See https://unlicense.org for the full text.""",
    "Zlib": """This software is provided 'as-is', without any express or implied
warranty. In no event will the authors be held liable for any damages
arising from the use of this software.
.
Permission is granted to anyone to use this software for any purpose,
including commercial applications, and to alter it and redistribute it
freely, subject to the following restrictions:
.
1. The origin of this software must not be misrepresented; you must not
   claim that you wrote the original software.
2. Altered source versions must be plainly marked as such, and must not be
   misrepresented as being the original software.
3. This notice may not be removed or altered from any source distribution.""",
}

LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)", re.I)
# "Copyright (c) 2019 X", "Copyright 2019 X", "(c) 2019 X", "© X": a year or
# a (c) sign, so the Apache license's own sentences about copyright are not
# taken for notices.
COPYRIGHT_LINE = re.compile(
    r"^\s*(Copyright\s*(\(c\)|©)?\s*\d|Copyright\s*(\(c\)|©)\s*\S|(\(c\)|©)\s*\d)", re.I)


def linked_packages(meta):
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"] if p["name"] == "wgnetconf")
    seen, stack = set(), [root]
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            if any(k["kind"] is None for k in d["dep_kinds"]):
                stack.append(d["pkg"])
    out = []
    for i in seen:
        p = pkgs[i]
        if any("proc-macro" in t["kind"] for t in p["targets"]):
            continue
        out.append(p)
    return sorted(out, key=lambda p: (p["name"], p["version"]))


def copyright_lines(pkg):
    """The crate's copyright lines, from its license files; else its authors."""
    d = os.path.dirname(pkg["manifest_path"])
    lines = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        names = []
    for n in names:
        path = os.path.join(d, n)
        if not LICENSE_FILE.match(n) or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if COPYRIGHT_LINE.match(line) and "<year>" not in line.lower() \
                            and "[yyyy]" not in line.lower() and line not in lines:
                        lines.append(line)
        except OSError:
            pass
    if not lines:
        authors = ", ".join(pkg.get("authors") or []) or f"the {pkg['name']} developers"
        lines = [authors]
    return lines


def spdx_ids(expr):
    return set(re.findall(r"[A-Za-z0-9.\-]+", expr.replace("/", " OR "))) - {"OR", "AND", "WITH"}


def main():
    meta = json.load(sys.stdin)
    pkgs = linked_packages(meta)
    used = set()
    out = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Upstream-Name: wgnetconf",
        "Comment: The wgnetconf binary links statically the Rust crates listed",
        " below (generated from Cargo.lock by packaging/deb/copyright.py) and",
        " libyang, bundled by the libyang5-sys crate.",
        "",
    ]
    libyang = None
    for p in pkgs:
        lic = p.get("license")
        if not lic:
            sys.exit(f"copyright.py: crate {p['name']} {p['version']} has no license expression")
        lic = lic.replace("/", " OR ")
        used |= spdx_ids(lic)
        files = "*" if p["source"] is None and p["name"] == "wgnetconf" else \
            f"{'workspace' if p['source'] is None else 'cargo-registry'}/{p['name']}-{p['version']}/*"
        out.append(f"Files: {files}")
        cl = copyright_lines(p)
        out.append("Copyright: " + cl[0])
        out += [" " + c for c in cl[1:]]
        out.append(f"License: {lic}")
        out.append(f"Comment: crate {p['name']} {p['version']}")
        out.append("")
        if p["name"] == "libyang5-sys":
            libyang = os.path.join(os.path.dirname(p["manifest_path"]), "libyang", "LICENSE")
    if libyang is None:
        sys.exit("copyright.py: libyang5-sys is not linked: where does libyang come from?")
    try:
        with open(libyang, encoding="utf-8") as f:
            first = next((l.strip() for l in f if COPYRIGHT_LINE.match(l)), "2015 - 2025, CESNET")
    except OSError:
        first = "Copyright (c) 2015 - 2025, CESNET"
    out += [
        "Files: cargo-registry/libyang5-sys-*/libyang/*",
        f"Copyright: {first}",
        "License: BSD-3-Clause",
        "Comment: libyang, compiled and statically linked by libyang5-sys (feature bundled)",
        "",
    ]
    used.add("BSD-3-Clause")
    for lic in sorted(used):
        text = LICENSE_TEXTS.get(lic)
        if text is None and lic == "Unicode-3.0":
            text = "See https://www.unicode.org/license.txt (UNICODE LICENSE V3)."
        if text is None:
            sys.exit(f"copyright.py: no text for license {lic}: add it")
        out.append(f"License: {lic}")
        out += [" " + l if l else " ." for l in text.splitlines()]
        out.append("")
    sys.stdout.write("\n".join(out))


main()
