#include "layer_zoo.h"

#include "lipkit/lipkit.h"

namespace lipkit::testing {

namespace {
template <typename M>
std::function<torch::nn::Sequential()> seq(std::function<M()> make) {
  return [make] { return torch::nn::Sequential(make()); };
}
}  // namespace

std::vector<LayerCase> layer_cases() {
  std::vector<LayerCase> c;
  auto add = [&](std::string name, std::function<torch::nn::Sequential()> make,
                 std::vector<int64_t> shape, Norm norm = Norm::L2) {
    c.push_back({std::move(name), std::move(make), std::move(shape), norm});
  };
  add("CplLinear_6x8", seq<CplLinear>([] { return CplLinear(6, 8); }), {6});
  add("CplLinear_8x3", seq<CplLinear>([] { return CplLinear(8, 3); }), {8});
  add("CplConv2d_3x4_k3", seq<CplConv2d>([] { return CplConv2d(3, 4); }), {3, 5, 5});
  add("CplConv2d_2x3_k5",
      seq<CplConv2d>([] { return CplConv2d(CplConv2dOptions(2, 3).kernel_size(5)); }), {2, 6, 6});
  add("SllLinear_6x8", seq<SllLinear>([] { return SllLinear(6, 8); }), {6});
  add("SllLinear_8x3", seq<SllLinear>([] { return SllLinear(8, 3); }), {8});
  add("SllConv2d_3x4_k3", seq<SllConv2d>([] { return SllConv2d(3, 4); }), {3, 5, 5});
  add("SllConv2d_cancel_q",
      seq<SllConv2d>([] { return SllConv2d(SllConv2dOptions(3, 4).cancel_q(true)); }), {3, 5, 5});
  add("SllConv2d_2x3_k5",
      seq<SllConv2d>([] { return SllConv2d(SllConv2dOptions(2, 3).kernel_size(5)); }), {2, 6, 6});
  add("AolLinear_6x5", seq<AolLinear>([] { return AolLinear(6, 5); }), {6});
  add("AolLinear_4x7", seq<AolLinear>([] { return AolLinear(4, 7); }), {4});
  add("AolConv2d_3x4", seq<AolConv2d>([] { return AolConv2d(3, 4); }), {3, 5, 5});
  add("SpectralLinear_6x5", seq<SpectralLinear>([] { return SpectralLinear(6, 5); }), {6});
  add("SpectralConv2d_3x4", seq<SpectralConv2d>([] { return SpectralConv2d(3, 4); }), {3, 5, 5});
  add("SpectralConv2d_2x2_k5",
      seq<SpectralConv2d>([] { return SpectralConv2d(SpectralConv2dOptions(2, 2).kernel_size(5)); }),
      {2, 4, 4});
  add("OrthogonalLinear_6x4", seq<OrthogonalLinear>([] { return OrthogonalLinear(6, 4); }), {6});
  add("OrthogonalLinear_4x6", seq<OrthogonalLinear>([] { return OrthogonalLinear(4, 6); }), {4});
  for (Norm norm : {Norm::L2, Norm::Linf}) {
    add("MaxMin", seq<MaxMin>([] { return MaxMin(); }), {6}, norm);
    add("MaxMin_conv", seq<MaxMin>([] { return MaxMin(); }), {4, 3, 3}, norm);
    add("GroupSort3", seq<GroupSort>([] { return GroupSort(3); }), {6}, norm);
    add("PadChannels", seq<PadChannels>([] { return PadChannels(3, 5); }), {3, 3, 3}, norm);
    add("PixelUnshuffle", seq<PixelUnshuffle>([] { return PixelUnshuffle(2); }), {2, 4, 4}, norm);
    add("FirstChannels", seq<FirstChannels>([] { return FirstChannels(3); }), {6}, norm);
  }
  add("SumPool2d", seq<SumPool2d>([] { return SumPool2d(2); }), {2, 4, 4});
  add("SumPool2d_linf", seq<SumPool2d>([] { return SumPool2d(2); }), {2, 4, 4}, Norm::Linf);  // bound 2
  for (Norm norm : {Norm::L2, Norm::Linf}) {
    add("MeanShift", seq<MeanShift>([] { return MeanShift(5); }), {5}, norm);
    add("NegatedDistance", seq<NegatedDistance>([] { return NegatedDistance(); }), {5}, norm);
    add("InputNormalization", seq<InputNormalization>([] {
          return InputNormalization(InputNormalizationOptions({0.5, 0.4}, {0.25, 0.5}));  // bound 4
        }), {2, 3, 3}, norm);
    add("NormalizedLinear", seq<NormalizedLinear>([] { return NormalizedLinear(6, 4); }), {6}, norm);
  }
  add("LinfDistLinear", seq<LinfDistLinear>([] { return LinfDistLinear(6, 5); }), {6}, Norm::Linf);
  add("LinfDistLinear_bias", seq<LinfDistLinear>([] { return LinfDistLinear(LinfDistLinearOptions(5, 4).bias(true)); }),
      {5}, Norm::Linf);
  add("LinfDistLinear_l2", seq<LinfDistLinear>([] { return LinfDistLinear(6, 5); }), {6}, Norm::L2);  // sqrt(out)
  add("SortNetLinear_k3", seq<SortNetLinear>([] { return SortNetLinear(SortNetLinearOptions(7, 5).k(3)); }), {7},
      Norm::Linf);
  for (Norm norm : {Norm::L2, Norm::Linf}) {
    add("LinearSpline", seq<LinearSpline>([] { return LinearSpline(LinearSplineOptions(6).num_knots(21).grid(0.3)); }),
        {6}, norm);
    add("LinearSpline_conv_maxmin", seq<LinearSpline>([] {
          return LinearSpline(LinearSplineOptions(4).num_knots(11).grid(0.5).init("maxmin"));
        }), {4, 3, 3}, norm);
  }
  add("LinearSpline_abs_half", seq<LinearSpline>([] {
        return LinearSpline(LinearSplineOptions(5).init("absolute_value").lipschitz(0.5).scaling(false));
      }), {5});
  add("LipschitzLinear_two", seq<LipschitzLinear>([] {
        return LipschitzLinear(LipschitzLinearOptions(6, 5).kind("two").lipschitz(0.9));
      }), {6});
  add("LipschitzLinear_inf", seq<LipschitzLinear>([] {
        return LipschitzLinear(LipschitzLinearOptions(6, 5).kind("inf").vectorwise(false));
      }), {6}, Norm::Linf);
  add("DpLinear", seq<DpLinear>([] { return DpLinear(6, 5); }), {6});
  add("DpBoundedInput", seq<DpBoundedInput>([] { return DpBoundedInput(1.5); }), {3, 2});
  add("CplLinear_spline", seq<CplLinear>([] {
        return CplLinear(CplLinearOptions(6, 8).activation("spline").spline_knots(11).spline_grid(0.3));
      }), {6});
  add("SllLinear_spline", seq<SllLinear>([] {
        return SllLinear(SllLinearOptions(6, 8).activation("spline").spline_knots(11).spline_grid(0.3));
      }), {6});
  add("Residual_CplLinear", seq<Residual>([] { return Residual(torch::nn::Sequential(CplLinear(6, 8))); }), {6});
  add("SortNetLinear_k10", seq<SortNetLinear>([] { return SortNetLinear(12, 6); }), {12}, Norm::Linf);
  // The example network, at a small size.
  add("ExampleNet",
      [] {
        return torch::nn::Sequential(PadChannels(1, 4), SllConv2d(SllConv2dOptions(4).kernel_size(3)),
                                     SllConv2d(SllConv2dOptions(4).kernel_size(3)), SumPool2d(2),
                                     torch::nn::Flatten(), SllLinear(SllLinearOptions(4 * 3 * 3)),
                                     FirstChannels(3));
      },
      {1, 6, 6});
  return c;
}

}  // namespace lipkit::testing
