"""Knowledge distillation for lane segmentation.

- :mod:`.intra_kd`: IntRA-KD (Hou et al., CVPR 2020): AOI maps, moment pooling, inter-region
  affinity graphs and their matching loss L_m;
- :mod:`.attention`: attention transfer (Zagoruyko & Komodakis 2017; the paper's L_a);
- :mod:`.kd`: Hinton et al.'s KD on per-pixel class probabilities;
- :mod:`.skd`: structured KD (Liu et al., CVPR 2019): pixel-wise, pair-wise, holistic (WGAN-GP);
- LGAD (Liu & Zhu, Neurocomputing 2021): a label-input teacher with the student's architecture
  (``model.input: label``) whose SAD-style attention maps (sum_c F^2, spatial softmax, MSE;
  :func:`.attention.sad_attention_loss`) supervise the student's at the same layers. Only the
  paper's abstract was reachable here: the layers (ERFNet blocks 2 and 3), the attention form
  and the weight 0.1 follow SAD (Hou et al., ICCV 2019), which LGAD builds on;
- :mod:`.distiller`: the combination a config asks for, with the frozen teacher(s).
"""
