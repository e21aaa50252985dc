"""ApolloScape lane markings: label reading and the official mIoU (:mod:`.labels`, command
:mod:`.evaluate`), the converter to a trainable CULane-layout root (:mod:`.convert`) and the synthetic
ApolloScape-style marking generator (:mod:`.synthetic`). The class table itself is the deployed
contract and lives in :mod:`runtime.marking_classes`."""
