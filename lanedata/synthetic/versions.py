"""Version of each synthetic generator's output: raised whenever a generator changes what it writes
for the same seed. The manifests record it, and the pipeline's data stage signs with it, so a
dataset made by an older generator is regenerated (:func:`pipeline.stages.data_signature`); kept
here, apart from the generator commands, so that the pipeline reads it without importing them.
"""

CULANE = 3  # 2: CULane rig (hood, margins, overlay, lens), roadside, vehicles, textured tarmac;
#            3: cameras from physics and specs (lanedata.synthetic.mount): heights, pitch, yaw, fields of view, frames letterboxed
APOLLOSCAPE = 2  # the ApolloScape-style marking set (lanedata.apolloscape.synthetic); 2: the CULane generator's v3 cameras
LLAMAS = 4  # 2: unpainted lines labelled (a map's labels: no renumbering of the lines outside them); double lines on the inner line;
#            3: labels as the official tools read them: projection_matrix numbers, markers cut to the frame (rows 0..716, columns 0..1275);
#            4: the CULane generator's v3 scenes (camera heights of cars to trucks)
