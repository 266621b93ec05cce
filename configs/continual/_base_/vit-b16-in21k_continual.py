# What the ViT-B/16 continual benchmarks share: ViT-B/16 pretrained on ImageNet-21k (frozen; the head zeroed: each
# task's adapter carries its own head LoRA), one LoRA adapter per task on every attention qkv, the L2R router on a
# replay memory, Arrow's defaults, every method. The per-task recipe is InfLoRA's (Liang & Li, CVPR 2024,
# liangyanshuo/InfLoRA configs/cifar100_inflora.json and mimg10_inflora.json: Adam lr 5e-4, weight decay 0, batch
# 128, LoRA rank 10), without its lr decay (a constant lr here) and without its gradient projection (each task has
# its own adapter instead). Memory: L2R needs one; the anchors L2P / DualPrompt / InfLoRA are rehearsal-free.
model = dict(model='vit_base_patch16_224', pretrained='zoo://vit_base_patch16_224.in21k', zero_head=True)
recipe = dict(lr=5e-4, weight_decay=0.0, batch_size=128, num_workers=8)
router = dict(routers='model', mode='output', hidden=64, epochs=100, lr=1e-2)
arrow = dict(top_k=4, temperature=1.0)
methods = ['oracle', 'l2r', 'arrow', 'uniform', 'seq_ft', 'nearest_prototype', 'simplecil']
seed = 0
device = 'auto'
