# The options of recipes/wsj/run.sh and run_seeds.sh, sourced by both (after
# ../utils/options.sh): every option declared once with its default and its --help line,
# then the presets of --task, then the command line (parse_options), which wins.
# ---- options (each can be given as --name value) ---------------------------
opts task=mini shared=../../../shared/data stage=0 stop_stage=10 data=data exp=exp
opts lm_data= lm_exp=  # LM data and models, when not --data / --exp (a --task shares them)
opts lm_text= lm_valid= lm_test= wsj1_lm_root=
opts nbest_dev= nbest_eval= nbest_format= ref_dev= ref_eval=
opts first_pass_scores=am,lm0 tune_first_pass=true extra_scores= oov_feature=false fallback=false
opts decode=1best dedup=false text_filter=
opts mini_words=150000 mini_utts=300 mini_nbest=20
opts valid_every=50 vocab_size=20000
opts teacher_conf=conf/teacher.yaml student_conf=conf/student.yaml num_teachers=1 ensemble=prob
opts use_cache=false topk=32
opts alpha=0.5 tau=2.0 trust=none trust_k=10 trust_beta=1.0
opts device=auto seed=0
opts batch_tokens=20000 nj=1 threads= quiet=true
# Scoring filter (asr-kd score/tune/compare --noise, --noise-vocab): words removed from
# hypotheses and references before WER, e.g. --noise '[*],<unk>' (-pau- always is).
opts noise= noise_vocab=
opts int8_student=auto  # true|false|auto (auto: when onnxruntime is installed)
# Leakage guard before training (asr-kd overlap): stop when more than these percentages of
# the dev or eval reference sentences / 8-grams occur in the LM text; --allow-overlap true
# only prints them.  --speaker-chars N: speaker = first N characters of an id (details).
opts max_overlap_sentences=5 max_overlap_ngrams=30 allow_overlap=false speaker_chars=
# Size frontier (stage 10): baseline and student at every size of --frontier, per seed run.
opts frontier= frontier_trust= frontier_trust_at= frontier_int8=auto

# --help: one line per option
opt_help task "mini | chime4 | wsj-whisper: presets for a real-data task (options given win)"
opt_help shared "folder of the shared real data (PTB, HyPoradise lists) for --task"
opt_help stage "first stage to run (0 data .. 9 report, 10 size frontier)"
opt_help stop_stage "last stage to run"
opt_help data "data folder (texts, imported N-best lists)"
opt_help exp "experiment folder (models, scores, report)"
opt_help lm_data "LM data folder, when not --data (a --task shares it)"
opt_help lm_exp "LM model folder, when not --exp (a --task shares it)"
opt_help lm_text "LM training text (plain or Kaldi text) instead of the mini task's"
opt_help lm_valid "its own validation text (default: every --valid-every-th line held out)"
opt_help lm_test "test text: stage 6 also reports stream and sentence perplexity on it"
opt_help wsj1_lm_root "WSJ1 LDC folder: LM text from its 1987-89 WSJ text"
opt_help nbest_dev "dev N-best list (file or folder) to tune on"
opt_help nbest_eval "eval N-best list (default with --nbest-dev alone: half of dev, by id hash)"
opt_help nbest_format "reader of the lists: kaldi espnet srilm json nemo jsonl (default: detect)"
opt_help ref_dev "dev references (Kaldi text or trn; default: inside the list)"
opt_help ref_eval "eval references (Kaldi text or trn; default: inside the list)"
opt_help first_pass_scores "the recogniser's score keys, first one fixed at weight 1"
opt_help tune_first_pass "true: tune the first pass's own weights; false: its first score alone"
opt_help extra_scores "more score keys to tune with every system (comma-separated)"
opt_help oov_feature "true: also tune each LM's OOV count (oov:NAME, signed weight)"
opt_help fallback "true: keep an LM's weights only if they beat the first pass out of fold"
opt_help decode "1best | consensus (confusion network; posterior scale tuned too)"
opt_help dedup "true: drop repeated hypotheses when importing the lists"
opt_help text_filter "rules file or rules rewriting hypotheses before LM scoring (not WER)"
opt_help mini_words "mini task: LM training words"
opt_help mini_utts "mini task: utterances per dev and eval set"
opt_help mini_nbest "mini task: hypotheses per utterance"
opt_help valid_every "every N-th LM text line held out for validation"
opt_help vocab_size "words in words.txt (most frequent)"
opt_help teacher_conf "teacher config YAML"
opt_help student_conf "student and baseline config YAML (its kd: section for distillation)"
opt_help num_teachers "teachers trained side by side; more than 1: an ensemble"
opt_help ensemble "prob | logit: how an ensemble of teachers combines"
opt_help use_cache "true: distil from a top-K teacher cache (stage 4)"
opt_help topk "teacher predictions kept per token in the cache"
opt_help alpha "KD: weight of the soft term, 0..1"
opt_help tau "KD: temperature"
opt_help trust "KD: none | prob | rank | margin, per-token trust in the teacher"
opt_help trust_k "KD: rank trust's top-k"
opt_help trust_beta "KD: margin trust's slope"
opt_help device "auto | cpu | cuda"
opt_help seed "training seed (run R of run_seeds.sh uses seed + 1000 (R - 1))"
opt_help batch_tokens "rescoring batch size in tokens"
opt_help nj "parallel rescoring shard jobs per system (stage 7)"
opt_help threads "CPU threads shared by the jobs run at once (default: the CPU set)"
opt_help quiet "true: no progress bars or lines in the logs"
opt_help noise "scoring filter: words/patterns removed before WER (-pau- always is)"
opt_help noise_vocab "scoring filter: a file of such words (SRILM's -noise-vocab)"
opt_help int8_student "true | false | auto: also export and report an int8 ONNX student"
opt_help max_overlap_sentences "leakage guard: stop above this % of reference sentences in the LM text"
opt_help max_overlap_ngrams "leakage guard: stop above this % of reference 8-grams in the LM text"
opt_help allow_overlap "true: print the leakage check and go on whatever it finds"
opt_help speaker_chars "details: speaker = the first N characters of an utterance id"
opt_help frontier "sizes for the size frontier (stage 10), e.g. 1x16,e64h64,1x512p64 (LxH, lN hN eN pN)"
opt_help frontier_trust "frontier: trust modes of the students, e.g. none,margin (default: --trust)"
opt_help frontier_trust_at "frontier: sizes that get every --frontier-trust mode (default: all)"
opt_help frontier_int8 "frontier: auto (as --int8-student) | true | false | sizes with an int8 student"
# --task presets the options of a real-data task; options given on the command line win.
for ((_i = 1; _i <= $#; _i++)); do
  case ${!_i} in
    --task) _j=$((_i + 1)); task=${!_j} ;;
    --task=*) task=${!_i#--task=} ;;
    --shared) _j=$((_i + 1)); shared=${!_j} ;;
    --shared=*) shared=${!_i#--shared=} ;;
  esac
done
case $task in
  mini) ;;
  chime4|wsj-whisper)
    # PTB (WSJ 1989 text) as LM text, its own valid/test files; Whisper 5-best lists.
    lm_text=$shared/ptb/ptb.train.txt; lm_valid=$shared/ptb/ptb.valid.txt
    lm_test=$shared/ptb/ptb.test.txt
    lm_data=data/ptb; lm_exp=exp/ptb; data=data/$task; exp=exp/$task
    nbest_format=json; dedup=true; oov_feature=true; tune_first_pass=false; fallback=true
    text_filter=conf/whisper_to_ptb.rules
    teacher_conf=conf/ptb_teacher.yaml; num_teachers=2; student_conf=conf/ptb_student.yaml
    use_cache=true; topk=64
    if [ $task = chime4 ]; then
      nbest_dev=$shared/hyporadise/chime4_dev.json; first_pass_scores=rank
    else
      nbest_dev=$shared/hyporadise/wsj_dev.json; first_pass_scores=score
    fi ;;
  *) echo "$0: unknown --task $task (mini, chime4, wsj-whisper)" >&2; exit 1 ;;
esac
parse_options "$@"
lm_data=${lm_data:-$data}; lm_exp=${lm_exp:-$exp}
