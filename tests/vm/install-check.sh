#!/bin/sh
# Guest side of `make stock-dkms-test`: the module at /lib/modules/rustnl.ko
# (the one dkms built and installed) is installed the way dkms and
# `make install` do (/lib/modules/<release>/updates/dkms/, depmod), then
# loaded by name with modprobe, and, when it declares the alias
# net-pf-16-proto-31, autoloaded by a client's socket().
set -e
r=$(uname -r)
rmmod rustnl 2>/dev/null || true
mkdir -p "/lib/modules/$r/updates/dkms"
cp /lib/modules/rustnl.ko "/lib/modules/$r/updates/dkms/rustnl.ko"
depmod
echo '$ modprobe rustnl'
modprobe rustnl
lsmod | grep '^rustnl '
rustnl echo "Hello from the module dkms built"
rmmod rustnl
if grep -q 'net-pf-16-proto-31 rustnl' "/lib/modules/$r/modules.alias"; then
    echo '$ rustnl echo autoloaded   (module not loaded: socket() makes the kernel modprobe net-pf-16-proto-31)'
    rustnl echo autoloaded
    lsmod | grep '^rustnl '
else
    echo 'autoload: not checked (the module declares no alias net-pf-16-proto-31)'
fi
