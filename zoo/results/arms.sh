# Shared by the ablation scripts in zoo/results/*/run.sh (source it; it defines
# functions only). An ablation trains one run per arm, one after the other on both
# cores, and must continue where an interrupted session stopped.
#
# train_arm DIR ARGS...
#   Trains an arm with `examples/train_hqa.py --output DIR ARGS...`, its output in
#   DIR.log. Adds --resume when DIR holds a checkpoint, and does nothing when DIR's
#   layer_metrics.csv has a row (the arm finished). Needs $root, the repository.
train_arm() {
    local dir=$1
    shift
    if [ -f "$dir/layer_metrics.csv" ] && [ "$(wc -l <"$dir/layer_metrics.csv")" -ge 2 ]; then
        return 0
    fi
    local resume=()
    [ -f "$dir/checkpoint.pth" ] && resume=(--resume)
    python "$root/examples/train_hqa.py" --output "$dir" "$@" "${resume[@]}" \
        >"$dir.log" 2>&1
}
