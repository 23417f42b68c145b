#!/bin/sh
# The browser tests drive Debian's Chromium; without a CJK font Chinese renders as boxes.
# Installs what is missing when it can (root or password-less sudo), else says what to install.
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
fc-list 2>/dev/null | grep -q "WenQuanYi Micro Hei" || missing="$missing fonts-wqy-microhei"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then run=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then run="sudo -n"
else
  echo "browser tests need Debian packages:$missing (apt-get install$missing); they will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$run apt-get install -y -q --no-install-recommends $missing >/dev/null \
  || { $run apt-get update -q >/dev/null && $run apt-get install -y -q --no-install-recommends $missing >/dev/null; }
