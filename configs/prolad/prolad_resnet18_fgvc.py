# ProLAD's setting: a frozen ImageNet ResNet-18, episodes from several domains (here the five FGVC datasets in
# VPT's layout, test split), 5-way 5-shot with 15 queries, 600 episodes per domain.
# python tools/fewshot_eval.py configs/prolad/prolad_resnet18_fgvc.py --out work_dirs/fs/fgvc.json
backbone = 'resnet18'
pretrained = 'timm'
img_size = 84  # the cross-domain few-shot benchmarks' 84 x 84 images
method = ['frozen', 'head', 'tsa', 'prolad']
dataset = ['cub', 'nabirds', 'flowers', 'dogs', 'cars']
data_root = ['data/fgvc/CUB_200_2011', 'data/fgvc/nabirds', 'data/fgvc/OxfordFlower', 'data/fgvc/Stanford-dogs',
             'data/fgvc/Stanford-cars']
n_way, k_shot, n_query = 5, 5, 15
episodes = 600
