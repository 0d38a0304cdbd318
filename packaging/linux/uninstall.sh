#!/bin/sh
# Remove DocFocus installed by install.sh. Your documents' library and cache in the data folder
# (~/.local/share/DocFocus, or $DOCFOCUS_HOME) are kept unless you pass --purge.
set -eu
prefix=${PREFIX:-"$HOME/.local"}
app_dir="$prefix/lib/docfocus"
apps_dir="${XDG_DATA_HOME:-$prefix/share}/applications"
icon_file="${XDG_DATA_HOME:-$prefix/share}/icons/hicolor/512x512/apps/docfocus.png"

if [ -L "$prefix/bin/docfocus" ] && [ "$(readlink "$prefix/bin/docfocus")" = "$app_dir/docfocus" ]; then
    rm -f "$prefix/bin/docfocus"
fi
rm -rf "$app_dir"
rm -f "$apps_dir/docfocus.desktop" "$icon_file"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps_dir" || true
if [ "${1:-}" = "--purge" ]; then
    data="${DOCFOCUS_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/DocFocus}"
    rm -rf "$data"
    echo "DocFocus and its data ($data) removed."
else
    echo "DocFocus removed. Your library and cache are kept in ${XDG_DATA_HOME:-$HOME/.local/share}/DocFocus (./uninstall.sh --purge removes them)."
fi
