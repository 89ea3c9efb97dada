#!/bin/bash
# dracut module (installed as /usr/lib/dracut/modules.d/50kiln): runs
# kiln-prepare-root in the systemd initramfs after /sysroot is mounted.
check() { return 255; }  # only when asked for (dracut --add kiln, or add_dracutmodules)
depends() { echo systemd; }
install() {
	inst_simple /usr/lib/kiln/kiln-prepare-root /usr/lib/kiln/kiln-prepare-root
	inst_simple "$moddir/kiln-prepare-root.service" "$systemdsystemunitdir/kiln-prepare-root.service"
	$SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target kiln-prepare-root.service
}
