#!/bin/sh
# Doxygen INPUT_FILTER: peermq's headers document with plain `//` comments (house style). Turn a
# comment line into a Doxygen comment (`///`) and a trailing member comment into `///<`, so the API
# reference shows them; the headers themselves stay as they are.
exec sed -e 's|^\([[:space:]]*\)//\([^/]\)|\1///\2|' \
         -e 's|\([;,{]\)\([[:space:]]*\)//\([^/]\)|\1\2///<\3|' "$1"
