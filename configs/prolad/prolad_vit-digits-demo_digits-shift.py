# ProLAD against its baselines on the quick start's shifted digits (the shipped digits ViT), 5-way 5-shot.
# python tools/fewshot_eval.py configs/prolad/prolad_vit-digits-demo_digits-shift.py --out work_dirs/fs/digits.json
backbone = 'vit_digits_demo'
pretrained = 'timm'  # the file shipped in petl_vision/demo
method = ['frozen', 'tsa', 'lora', 'prolad']
dataset = ['digits-shift']
n_way, k_shot, n_query = 5, 5, 15
episodes = 600
seed = 0
