#!/bin/sh
# Install DocFocus for the current user under ~/.local (no root needed):
#   ~/.local/lib/docfocus/            the app (this tarball's DocFocus/ folder)
#   ~/.local/bin/docfocus             a link to the executable
#   ~/.local/share/applications/      the menu entry (docfocus.desktop)
#   ~/.local/share/icons/hicolor/     the icon
# Usage: ./install.sh            (PREFIX=/some/where ./install.sh installs elsewhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-"$HOME/.local"}
app_dir="$prefix/lib/docfocus"
bin_dir="$prefix/bin"
apps_dir="${XDG_DATA_HOME:-$prefix/share}/applications"
icon_dir="${XDG_DATA_HOME:-$prefix/share}/icons/hicolor/512x512/apps"

if [ ! -x "$here/DocFocus/docfocus" ]; then
    echo "install.sh: $here/DocFocus/docfocus not found; run this script from the unpacked tarball." >&2
    exit 1
fi
echo "Installing DocFocus into $app_dir"
mkdir -p "$prefix/lib" "$bin_dir" "$apps_dir" "$icon_dir"
staging="$app_dir.new.$$"
rm -rf "$staging"
cp -a "$here/DocFocus" "$staging"
rm -rf "$app_dir"
mv "$staging" "$app_dir"
ln -sf "$app_dir/docfocus" "$bin_dir/docfocus"
cp "$here/docfocus.png" "$icon_dir/docfocus.png"
# The menu entry runs the executable by its full path: ~/.local/bin is not always on a desktop's PATH.
sed -e "s|^Exec=docfocus|Exec=\"$app_dir/docfocus\"|" -e "s|^TryExec=docfocus|TryExec=$app_dir/docfocus|" \
    "$here/docfocus.desktop" > "$apps_dir/docfocus.desktop"
chmod 644 "$apps_dir/docfocus.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps_dir" || true

echo "Done. Start DocFocus from your applications menu, or run: $bin_dir/docfocus"
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) echo "Note: $bin_dir is not on your PATH; add it to run 'docfocus' by name." ;;
esac
echo "Check the install with: $bin_dir/docfocus --self-test"
