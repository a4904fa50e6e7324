# /etc/profile.d/jazari.sh - from the jazari package, read by login shells.
# jz as a user of this machine talks to the daemon's socket in
# /var/lib/jazari (root's default; a user's own default is under ~/.local).
if [ -z "${JAZARI_SOCKET:-}" ] && [ -S /var/lib/jazari/jazarid.sock ]; then
    JAZARI_SOCKET=/var/lib/jazari/jazarid.sock
    export JAZARI_SOCKET
fi
# The Slurm front ends (sbatch, srun, squeue... run by jz) are off PATH so
# that a real Slurm's are never shadowed; jobs find them anyway. Where no
# Slurm is installed, an admin may put them on everyone's PATH:
# case ":$PATH:" in *:/usr/lib/jazari/slurm:*) ;; *) PATH="/usr/lib/jazari/slurm:$PATH" ;; esac
