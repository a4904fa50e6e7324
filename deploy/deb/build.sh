#!/bin/sh
# build.sh - `make deb`: the Debian package build/jazari_<version>_<arch>.deb
# from a finished build, with dpkg-deb alone (no debhelper).
#
#   deploy/deb/build.sh BUILD VERSION
#
# Layout: jazarid lives in /usr/lib/jazari with the Slurm front ends in
# /usr/lib/jazari/slurm beside it (the daemon puts <its directory>/slurm
# first on its jobs' PATH, and finds jazari-burnin beside itself), and
# /usr/sbin/jazarid is a link to it. jz is /usr/bin/jz; the front ends are
# links to it, kept off everyone's PATH so that a real Slurm's
# /usr/bin/sbatch is never shadowed.
set -eu

build=${1:?usage: build.sh BUILD VERSION}
version=${2:?usage: build.sh BUILD VERSION}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
arch=$(dpkg --print-architecture)
out="$build/jazari_${version}_${arch}.deb"
root="$build/deb/root"

rm -rf "$build/deb"
mkdir -p "$root/DEBIAN"

# --- files -------------------------------------------------------------------------
d() { install -d -m 0755 "$root/$1"; }
f() { install -D -m "$1" "$2" "$root/$3"; }

f 0755 "$build/jazarid" usr/lib/jazari/jazarid
strip --strip-debug "$root/usr/lib/jazari/jazarid" 2>/dev/null || true
d usr/sbin
ln -s ../lib/jazari/jazarid "$root/usr/sbin/jazarid"
f 0755 "$build/jz" usr/bin/jz
strip --strip-debug "$root/usr/bin/jz" 2>/dev/null || true
if [ -x "$build/jazari-burnin" ]; then
    f 0755 "$build/jazari-burnin" usr/lib/jazari/jazari-burnin
else
    echo "note: no $build/jazari-burnin (no CUDA toolkit at build time): the package has no burn-in program" >&2
fi
d usr/lib/jazari/slurm
for link in "$build"/slurm/*; do
    ln -s ../../../bin/jz "$root/usr/lib/jazari/slurm/$(basename "$link")"
done

f 0644 "$here/jazari-controller.service" lib/systemd/system/jazari-controller.service
f 0644 "$here/jazari-agent.service" lib/systemd/system/jazari-agent.service
f 0644 "$here/controller.conf" etc/jazari/controller.conf
f 0644 "$here/agent.conf" etc/jazari/agent.conf
f 0644 "$here/profile.sh" etc/profile.d/jazari.sh
f 0644 "$top/deploy/completion/jz.bash" usr/share/bash-completion/completions/jz

for page in "$top"/man/man1/*.1 "$top"/man/man8/*.8; do
    sect=${page##*.}
    f 0644 "$page" "usr/share/man/man$sect/$(basename "$page")"
    gzip -9n "$root/usr/share/man/man$sect/$(basename "$page")"
done

doc=usr/share/doc/jazari
f 0644 "$here/copyright" "$doc/copyright"
f 0644 "$top/CHANGELOG.md" "$doc/changelog"
gzip -9n "$root/$doc/changelog"
f 0644 "$top/README.md" "$doc/README.md"
for page in admin researcher interface startup; do
    f 0644 "$top/docs/$page.md" "$doc/$page.md"
done
f 0644 "$top/deploy/jazarid.conf.example" "$doc/examples/jazarid.conf.example"
f 0644 "$top/deploy/policy.conf.example" "$doc/examples/policy.conf.example"

# --- control -----------------------------------------------------------------------
# Depends: every library the programs link by name (DT_NEEDED), as the
# package that holds it, at least the version installed here (the one the
# build and the tests used), its Debian revision dropped.
pkgs="$build/deb/packages"
: > "$pkgs"
for prog in "$root/usr/lib/jazari/jazarid" "$root/usr/bin/jz" "$root/usr/lib/jazari/jazari-burnin"; do
    [ -f "$prog" ] || continue
    for lib in $(objdump -p "$prog" | awk '$1 == "NEEDED" { print $2 }'); do
        # "lib => /path (addr)", or "/path (addr)" for the dynamic loader
        path=$(ldd "$prog" | awk -v l="$lib" '$1 == l && $3 ~ /^\// { print $3; exit }
                                              $1 ~ ("/" l "$") { print $1; exit }')
        if [ -z "$path" ]; then
            echo "build.sh: $prog needs $lib, which ldd does not find" >&2
            exit 1
        fi
        # Debian 12 merged /usr: dpkg knows a library by the path its package ships.
        pkg=$({ dpkg -S "$path" || dpkg -S "$(readlink -f "$path")" || dpkg -S "${path#/usr}" ||
                dpkg -S "/usr$path"; } 2>/dev/null | head -1 | cut -d: -f1) || true
        if [ -z "$pkg" ]; then
            echo "build.sh: no installed package holds $path (needed by $prog)" >&2
            exit 1
        fi
        echo "$pkg" >> "$pkgs"
    done
done
depends=
for pkg in $(sort -u "$pkgs"); do
    v=$(dpkg-query -W -f '${Version}' "$pkg" | sed 's/^[0-9]*://; s/-[^-]*$//')
    depends="$depends${depends:+, }$pkg (>= $v)"
done

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@SIZE@/$size/" "$here/control.in" > "$root/DEBIAN/control"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
    xargs md5sum) > "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "built $out"
