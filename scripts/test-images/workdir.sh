# Sourced by the image builders that install into a chroot (debootstrap.sh, desktop.sh).
#   make_work_dir NAME OUT   sets $work to a fresh directory next to OUT and deletes it
#                            when the script exits, after unmounting whatever the build
#                            mounted inside it (/proc, /sys, /dev binds). Nothing is ever
#                            deleted through a mount that would not go away.
make_work_dir() {
  _work_owner=$1
  work=$(mktemp -d "$2.work.XXXXXX")
  trap _cleanup_work_dir EXIT
  trap 'exit 1' INT TERM
}

unmount_work_dir() {
  local m
  for m in $(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" || true
  done
  if awk -v w="$work" 'index($2, w) == 1 {found=1} END {exit !found}' /proc/mounts; then
    echo "$_work_owner: mounts remain under $work; not deleting" >&2
    return 1
  fi
}

_cleanup_work_dir() {
  unmount_work_dir && rm -rf --one-file-system "$work"
}
