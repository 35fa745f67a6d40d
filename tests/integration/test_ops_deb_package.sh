#!/usr/bin/env bash
# The .deb builds (cpack -G DEB), installs with dpkg -i, and `sluice check`
# and `sluice plugins` work from the installed paths (/usr/bin, the plugin
# folder under /usr/lib, /etc/sluice); the unit and the man pages are in it.
# Needs root (dpkg -i); the package is purged afterwards.
source "$SLUICE_SOURCE_DIR/tests/lib/common.sh"

if [ "$(id -u)" != 0 ]; then
    log "SKIP: installing a package needs root"
    exit 0
fi
if dpkg -s sluice >/dev/null 2>&1; then
    fail "a sluice package is already installed on this machine; this test would replace it"
fi

build=$TEST_TMP/build
log "configure and build a release tree (prefix /usr)"
cmake -S "$SLUICE_SOURCE_DIR" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX=/usr -DSLUICE_BUILD_TESTS=OFF >"$TEST_TMP/configure.log" 2>&1 ||
    { tail -30 "$TEST_TMP/configure.log" >&2; fail "configure"; }
cmake --build "$build" -j2 >"$TEST_TMP/build.log" 2>&1 || { tail -30 "$TEST_TMP/build.log" >&2; fail "build"; }
(cd "$build" && cpack -G DEB) >"$TEST_TMP/cpack.log" 2>&1 || { tail -30 "$TEST_TMP/cpack.log" >&2; fail "cpack -G DEB"; }
deb=$(ls "$build"/sluice_*.deb)
dpkg-deb -c "$deb" >"$TEST_TMP/contents.txt"
for f in ./usr/bin/sluice ./etc/sluice/sluice.conf ./etc/sluice/conf.d/ sluice.service \
    man1/sluice.1 man5/sluice.conf.5 /sluice/plugins/sink-pg.so /sluice/plugins/source-file.so; do
    grep -q -- "$f" "$TEST_TMP/contents.txt" || fail "$f is not in the package"
done

purge() { dpkg --purge sluice >/dev/null 2>&1 || true; }
at_exit purge
log "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$TEST_TMP/dpkg.log" 2>&1 || { cat "$TEST_TMP/dpkg.log" >&2; fail "dpkg -i"; }

cat >/etc/sluice/conf.d/10-pkgtest.conf <<'CONF'
profiles = ( { name = "pkgtest"; entities = [ "items" ];
  source = { plugin = "file"; path = "/nonexistent"; };
  sink = { plugin = "pg"; conninfo = "host=127.0.0.1 dbname=x"; }; } );
CONF
remove_dropin() { rm -f /etc/sluice/conf.d/10-pkgtest.conf; }
at_exit remove_dropin
env -u SLUICE_PLUGIN_PATH /usr/bin/sluice check >"$TEST_TMP/check.out" 2>&1 ||
    { cat "$TEST_TMP/check.out" >&2; fail "sluice check from the installed paths"; }
env -u SLUICE_PLUGIN_PATH /usr/bin/sluice plugins >"$TEST_TMP/plugins.out" 2>&1
grep -q "/usr/lib/.*sluice/plugins" "$TEST_TMP/plugins.out" || { cat "$TEST_TMP/plugins.out" >&2; fail "plugins not loaded from the installed folder"; }
getent passwd sluice >/dev/null || fail "postinst did not create the sluice user"
man -w sluice >/dev/null 2>&1 || [ -e /usr/share/man/man1/sluice.1.gz ] || [ -e /usr/share/man/man1/sluice.1 ] || fail "man page sluice(1) not installed"
log "ok"
